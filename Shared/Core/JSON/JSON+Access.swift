/// Typed access to JSON values, with errors that say which field was wrong and
/// what was expected, so a service can turn them into a clear 4xx.
extension JSON {
    public subscript(key: String) -> JSON? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let value) = self { return value }; return nil }
    public var boolValue: Bool? { if case .bool(let value) = self { return value }; return nil }
    public var arrayValue: [JSON]? { if case .array(let value) = self { return value }; return nil }
    public var objectValue: [String: JSON]? { if case .object(let value) = self { return value }; return nil }

    /// Integers and reals both read as a double.
    public var doubleValue: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// Integers, and reals with no fractional part, read as an integer.
    public var intValue: Int? {
        switch self {
        case .int(let value): return value
        case .double(let value): return Int(exactly: value)
        default: return nil
        }
    }

    /// The JSON name of this value's type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// A field of a JSON document that is missing or does not have the expected form.
public struct JSONFieldError: Error, CustomStringConvertible, Sendable {
    /// Where the field is, e.g. `records[2].expiration_time`.
    public let path: String
    /// What the field should have been, e.g. "a number".
    public let expected: String
    /// What was found instead ("nothing" when missing).
    public let found: String

    public init(path: String, expected: String, found: String) {
        self.path = path
        self.expected = expected
        self.found = found
    }

    public var description: String { "field '\(path)': expected \(expected), got \(found)" }
}

/// A type that maps to and from JSON; request and response bodies conform.
public protocol JSONRepresentable {
    init(json: JSON) throws
    var json: JSON { get }
}

/// Reads the fields of one JSON object, naming each field's full path in errors.
public struct JSONObjectReader: Sendable {
    public let members: [String: JSON]
    public let path: String

    /// - Parameter path: where this object sits in the document ("" for the root).
    public init(_ json: JSON, path: String = "") throws(JSONFieldError) {
        guard let members = json.objectValue else {
            throw JSONFieldError(path: path.isEmpty ? "(body)" : path, expected: "an object", found: json.typeName)
        }
        self.members = members
        self.path = path
    }

    private func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The raw value of a required field.
    public func value(_ key: String) throws(JSONFieldError) -> JSON {
        guard let value = members[key] else {
            throw JSONFieldError(path: fieldPath(key), expected: "a value", found: "nothing")
        }
        return value
    }

    public func string(_ key: String) throws(JSONFieldError) -> String {
        try typed(key, "a string") { $0.stringValue }
    }
    public func double(_ key: String) throws(JSONFieldError) -> Double {
        try typed(key, "a number") { $0.doubleValue }
    }
    public func int(_ key: String) throws(JSONFieldError) -> Int {
        try typed(key, "an integer") { $0.intValue }
    }
    public func bool(_ key: String) throws(JSONFieldError) -> Bool {
        try typed(key, "a boolean") { $0.boolValue }
    }
    public func array(_ key: String) throws(JSONFieldError) -> [JSON] {
        try typed(key, "an array") { $0.arrayValue }
    }
    public func object(_ key: String) throws(JSONFieldError) -> JSONObjectReader {
        try JSONObjectReader(value(key), path: fieldPath(key))
    }

    /// An optional field: absent or `null` gives nil; present with the wrong type throws.
    public func optional<T>(_ key: String, _ read: (JSONObjectReader) -> (String) throws(JSONFieldError) -> T) throws(JSONFieldError) -> T? {
        guard let value = members[key], value != .null else { return nil }
        return try read(self)(key)
    }

    private func typed<T>(_ key: String, _ expected: String, _ convert: (JSON) -> T?) throws(JSONFieldError) -> T {
        let value = try value(key)
        guard let converted = convert(value) else {
            throw JSONFieldError(path: fieldPath(key), expected: expected, found: value.typeName)
        }
        return converted
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { $1 }))
    }
    public init(nilLiteral: ()) { self = .null }
}
