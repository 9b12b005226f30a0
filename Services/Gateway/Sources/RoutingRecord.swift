import Shared

/// Which experts answered for each sample of a forward call, with their
/// mixture weights. The gateway keeps no state between forward and backward:
/// the client sends this record back with its backward call, so any gateway
/// replica can serve it. It travels as JSON in the safetensors
/// `__metadata__["routing"]`: per sample, an array of `{uid, url, weight}`.
public struct RoutingRecord: Sendable, Equatable {
    public struct Route: Sendable, Equatable {
        public let uid: ExpertUID
        public let url: String
        public let weight: Float
    }

    /// Per sample, the experts that answered, best score first.
    public var samples: [[Route]]

    public init(samples: [[Route]]) {
        self.samples = samples
    }

    public var json: JSON {
        .array(samples.map { routes in
            .array(routes.map { ["uid": .string($0.uid.description), "url": .string($0.url), "weight": .double(Double($0.weight))] })
        })
    }

    /// The record's JSON text, as `json.serialized()` would write it (compact, keys sorted) but
    /// written directly: at batch 256 the generic path cost milliseconds per call. A weight is
    /// written with the fewest digits that read back as the same Float.
    public func serialized() -> String {
        // Each distinct expert's `{"uid":...,"url":...,"weight":` is written once and copied per route.
        var heads: [ExpertUID: (url: String, bytes: [UInt8])] = [:]
        var text: [UInt8] = []
        text.reserveCapacity(1 + samples.reduce(0) { $0 + 2 + $1.count * 72 })
        text.append(UInt8(ascii: "["))
        for (index, routes) in samples.enumerated() {
            if index > 0 { text.append(UInt8(ascii: ",")) }
            text.append(UInt8(ascii: "["))
            for (position, route) in routes.enumerated() {
                if position > 0 { text.append(UInt8(ascii: ",")) }
                if let head = heads[route.uid], head.url == route.url {
                    text.append(contentsOf: head.bytes)
                } else {
                    var head = Array(#"{"uid":"#.utf8)
                    JSON.writeString(route.uid.description, into: &head)
                    head += #","url":"#.utf8
                    JSON.writeString(route.url, into: &head)
                    head += #","weight":"#.utf8
                    heads[route.uid] = (route.url, head)
                    text.append(contentsOf: head)
                }
                text.append(contentsOf: JSONText.number(route.weight).utf8)
                text.append(UInt8(ascii: "}"))
            }
            text.append(UInt8(ascii: "]"))
        }
        text.append(UInt8(ascii: "]"))
        return String(decoding: text, as: UTF8.self)
    }

    /// Reads a record that forward wrote, checking that every uid lies under `prefix` on a grid
    /// of `gridSize`. The form `serialized()` writes is read directly; any other (spacing, key
    /// order, escapes, errors) goes through the generic JSON parser, which also words the errors.
    public init(text: String, prefix: String, gridSize: [Int], batch: Int) throws(HTTPError) {
        if let samples = CompactRoutingReader.read(text, prefix: prefix, gridSize: gridSize), samples.count == batch {
            self.init(samples: samples)
            return
        }
        guard let json = try? JSON.parse(text) else {
            throw .badRequest("metadata 'routing' must hold the routing record that forward returned")
        }
        try self.init(json: json, prefix: prefix, gridSize: gridSize, batch: batch)
    }

    /// Reads a record, checking that every uid lies under `prefix` on a grid of `gridSize`.
    public init(json: JSON, prefix: String, gridSize: [Int], batch: Int) throws(HTTPError) {
        guard let samples = json.arrayValue, samples.count == batch else {
            throw .badRequest("metadata 'routing' must be the forward call's routing record: an array of \(batch) samples")
        }
        self.samples = try samples.enumerated().map { index, routes throws(HTTPError) in
            guard let routes = routes.arrayValue else { throw .badRequest("routing[\(index)] must be an array of experts") }
            return try routes.map { route throws(HTTPError) in
                guard let uid = route["uid"]?.stringValue.flatMap(ExpertUID.init), let url = route["url"]?.stringValue,
                      let weight = route["weight"]?.doubleValue.map(Float.init), weight.isFinite, weight >= 0 else {
                    throw .badRequest("routing[\(index)] has an entry without a valid uid, url and non-negative weight (within float32's range): "
                        + route.serialized())
                }
                guard Self.isOnGrid(uid, prefix: prefix, gridSize: gridSize) else {
                    throw .unprocessable("routing[\(index)] names \(uid), which is not on the grid \(prefix)\(gridSize.map { "[0:\($0)]" }.joined(separator: "."))")
                }
                return Route(uid: uid, url: url, weight: weight)
            }
        }
    }

    static func isOnGrid(_ uid: ExpertUID, prefix: String, gridSize: [Int]) -> Bool {
        uid.prefixSteps.first?.prefix == prefix
            && uid.coordinates.count == gridSize.count && zip(uid.coordinates, gridSize).allSatisfy { $0 < $1 }
    }
}
