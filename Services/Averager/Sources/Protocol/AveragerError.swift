import Shared

/// Why an averaging call, a peer request or a state download failed. The
/// message says what was wrong and what was expected; `http` renders it as
/// the service's JSON error with a fitting status.
public struct AveragerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The class of problem; compare with the static members (`error.kind == .noGroupFound`).
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Code: String {
            case badRequest = "bad_request"
            case unprocessable
            case schemaMismatch = "schema_mismatch"
            case noGroupFound = "no_group_found"
            case unknownGroup = "unknown_group"
            case notInGroup = "not_in_group"
            case conflict
            case notFound = "not_found"
            case busy
            case unavailable
            case stateChanged = "state_changed"
            case timeout
            case rangeNotSatisfiable = "range_not_satisfiable"
            case unauthorized
            case tooMany = "too_many"
            case insufficientStorage = "insufficient_storage"
        }
        private let code: Code
        private init(_ code: Code) { self.code = code }

        /// A malformed request (400).
        public static let badRequest = Kind(.badRequest)
        /// Well-formed but unusable values: negative weights, NaN tensors, wrong sizes (422).
        public static let unprocessable = Kind(.unprocessable)
        /// The tensors do not match what the run's peers average (409).
        public static let schemaMismatch = Kind(.schemaMismatch)
        /// No group could be assembled before the deadline (504).
        public static let noGroupFound = Kind(.noGroupFound)
        /// A peer request names a group this averager is not running (404).
        public static let unknownGroup = Kind(.unknownGroup)
        /// A peer request comes from a peer that is not a sender of the group (403).
        public static let notInGroup = Kind(.notInGroup)
        /// A request that contradicts the round's state: a part sent twice, or too late (409).
        public static let conflict = Kind(.conflict)
        /// An unknown round or a prefix without shared state (404).
        public static let notFound = Kind(.notFound)
        /// A donor serving as many downloads as it allows (503).
        public static let busy = Kind(.busy)
        /// A dependency (the DHT, every donor) could not be reached (503).
        public static let unavailable = Kind(.unavailable)
        /// A donor's state changed between the chunks of one download, or
        /// another precondition (`If-Match`) failed (412).
        public static let stateChanged = Kind(.stateChanged)
        /// The call's own timeout passed while it waited for something other
        /// than a group: its turn on the prefix, an all-reduce, the DHT (504).
        public static let timeout = Kind(.timeout)
        /// A byte range that starts past the end of the state (416).
        public static let rangeNotSatisfiable = Kind(.rangeNotSatisfiable)
        /// A route that changes what others download, called without the run's token (401).
        public static let unauthorized = Kind(.unauthorized)
        /// More of something at once than this averager takes: runs, trainers, scheduled rounds (429).
        public static let tooMany = Kind(.tooMany)
        /// More bytes than this averager keeps, e.g. shared states (507).
        public static let insufficientStorage = Kind(.insufficientStorage)

        /// The machine-readable code of the JSON error, e.g. "no_group_found".
        public var description: String { code.rawValue }

        var status: Int {
            switch code {
            case .badRequest: 400
            case .unprocessable: 422
            case .schemaMismatch, .conflict: 409
            case .noGroupFound, .timeout: 504
            case .unknownGroup, .notFound: 404
            case .notInGroup: 403
            case .busy, .unavailable: 503
            case .stateChanged: 412
            case .rangeNotSatisfiable: 416
            case .unauthorized: 401
            case .tooMany: 429
            case .insufficientStorage: 507
            }
        }
    }

    /// The class of problem.
    public let kind: Kind
    /// What was wrong and what was expected.
    public let message: String

    /// An error of `kind` whose message says what was wrong and what was expected.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// "code: message".
    public var description: String { "\(kind): \(message)" }

    /// The JSON error response for this error.
    public var http: HTTPError { HTTPError(status: kind.status, code: kind.description, message: message) }
}
