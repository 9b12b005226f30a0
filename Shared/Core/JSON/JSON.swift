import CJansson

/// A JSON value. Parsing and serialization go through jansson; the value
/// itself is plain Swift so services never see a C pointer.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])
}

/// A document that is not valid JSON, with where jansson stopped reading.
public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    public let line: Int
    public let column: Int
    public let reason: String
    public var description: String { "invalid JSON at line \(line), column \(column): \(reason)" }
}

extension JSON {
    /// Parses one JSON document of any type (object, array or scalar).
    /// The corresponding C function is `json_loadb`.
    ///
    /// A document with an integer beyond 64 bits (valid JSON) is read again
    /// with every integer as a double, as JavaScript reads JSON.
    public static func parse<Bytes: Collection>(_ bytes: Bytes) throws(JSONParseError) -> JSON where Bytes.Element == UInt8 {
        if let direct = bytes.withContiguousStorageIfAvailable({ parseDirect(UnsafeRawBufferPointer($0)) }) ?? nil { return direct }
        return try janssonParse(bytes)
    }

    /// `parse` by jansson alone: what the direct reader leaves to it, and the
    /// reference it is tested against.
    package static func janssonParse<Bytes: Collection>(_ bytes: Bytes) throws(JSONParseError) -> JSON where Bytes.Element == UInt8 {
        do {
            return try load(bytes, flags: Int(JSON_DECODE_ANY))
        } catch where error.reason.hasPrefix("too big integer") || error.reason.hasPrefix("too big negative") {
            return try load(bytes, flags: Int(JSON_DECODE_ANY) | Int(JSON_DECODE_INT_AS_REAL))
        }
    }

    private static func load<Bytes: Collection>(_ bytes: Bytes, flags: Int) throws(JSONParseError) -> JSON where Bytes.Element == UInt8 {
        var error = json_error_t()
        let root: UnsafeMutablePointer<json_t>? = bytes.withContiguousStorageIfAvailable { buffer in
            buffer.withMemoryRebound(to: CChar.self) {
                json_loadb($0.baseAddress, $0.count, flags, &error)
            }
        } ?? Array(bytes).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) {
                json_loadb($0.baseAddress, $0.count, flags, &error)
            }
        }
        guard let root else {
            let reason = withUnsafeBytes(of: &error.text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw JSONParseError(line: Int(error.line), column: Int(error.column), reason: reason)
        }
        defer { cjansson_decref(root) }
        return JSON(borrowing: root)
    }

    /// Parses a JSON document given as text.
    public static func parse(_ text: String) throws(JSONParseError) -> JSON {
        try parse(Array(text.utf8))
    }

    private init(borrowing node: UnsafeMutablePointer<json_t>) {
        switch json_type(UInt32(cjansson_typeof(node))) {
        case JSON_OBJECT:
            var object: [String: JSON] = [:]
            object.reserveCapacity(json_object_size(node))
            var iterator = json_object_iter(node)
            while let current = iterator {
                let key = String(cString: json_object_iter_key(current))
                if let child = json_object_iter_value(current) { object[key] = JSON(borrowing: child) }
                iterator = json_object_iter_next(node, current)
            }
            self = .object(object)
        case JSON_ARRAY:
            self = .array((0..<json_array_size(node)).map { JSON(borrowing: json_array_get(node, $0)) })
        case JSON_STRING:
            let bytes = UnsafeRawBufferPointer(start: json_string_value(node), count: json_string_length(node))
            self = .string(String(decoding: bytes, as: UTF8.self))
        case JSON_INTEGER: self = .int(Int(json_integer_value(node)))
        case JSON_REAL: self = .double(json_real_value(node))
        case JSON_TRUE: self = .bool(true)
        case JSON_FALSE: self = .bool(false)
        default: self = .null
        }
    }

    /// Compact JSON text with sorted keys, so equal values serialize equally.
    /// Non-finite doubles, which JSON cannot express, become `null`.
    /// The corresponding C function is `json_dumpb`.
    public func serialized() -> String {
        String(decoding: serializedBytes(), as: UTF8.self)
    }

    /// The UTF-8 bytes of `serialized()`.
    public func serializedBytes() -> [UInt8] {
        serializedBytesDirect() ?? janssonSerializedBytes()
    }

    /// `serializedBytes()` by jansson alone: what the direct writer leaves to
    /// it, and the reference it is tested against.
    package func janssonSerializedBytes() -> [UInt8] {
        let node = makeNode()
        defer { cjansson_decref(node) }
        let flags = Int(JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION_17)
        let size = json_dumpb(node, nil, 0, flags)
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = buffer.withMemoryRebound(to: CChar.self) { json_dumpb(node, $0.baseAddress, size, flags) }
        }
    }

    /// Builds a jansson tree that the caller owns (one reference).
    private func makeNode() -> UnsafeMutablePointer<json_t> {
        switch self {
        case .null: return json_null()
        case .bool(let value): return value ? json_true() : json_false()
        case .int(let value): return json_integer(json_int_t(value))
        case .double(let value): return json_real(value) ?? json_null()
        case .string(let value):
            if value.isEmpty { return json_string_nocheck("") }
            let utf8 = Array(value.utf8)
            return utf8.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { json_stringn_nocheck($0.baseAddress, $0.count) }
            }
        case .array(let elements):
            let node = json_array()!
            for element in elements { json_array_append_new(node, element.makeNode()) }
            return node
        case .object(let members):
            let node = json_object()!
            for (key, value) in members { json_object_set_new_nocheck(node, key, value.makeNode()) }
            return node
        }
    }
}

/// `JSON_REAL_PRECISION(17)`: enough digits that every double reads back exactly.
private let JSON_REAL_PRECISION_17: Int32 = (17 & 0x1F) << 11
