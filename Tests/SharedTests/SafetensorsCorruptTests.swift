import Testing
@testable import Shared

/// A buffer with the given 8-byte length field, header text and body size.
private func payload(_ header: String, body: Int = 0, declaredLength: UInt64? = nil) -> [UInt8] {
    let headerBytes = Array(header.utf8)
    let length = declaredLength ?? UInt64(headerBytes.count)
    return withUnsafeBytes(of: length.littleEndian) { Array($0) } + headerBytes + [UInt8](repeating: 0, count: body)
}

/// One tensor entry's JSON with the given fields.
private func entry(_ dtype: String = "\"F32\"", _ shape: String = "[2]", _ offsets: String = "[0, 8]") -> String {
    #"{"dtype": \#(dtype), "shape": \#(shape), "data_offsets": \#(offsets)}"#
}

/// A corrupt buffer and a piece of the message its error must contain.
struct CorruptCase: CustomTestStringConvertible, Sendable {
    let label: String
    let bytes: [UInt8]
    let expected: String
    var testDescription: String { label }
}

private let cases: [CorruptCase] = [
    CorruptCase(label: "empty body", bytes: [], expected: "empty payload"),
    CorruptCase(label: "shorter than 8 bytes", bytes: [1, 0, 0], expected: "shorter than the 8-byte header length"),
    CorruptCase(label: "header length past the end", bytes: payload("{}", declaredLength: 40), expected: "header length 40 runs past the end"),
    CorruptCase(label: "100 MB header length on a 1 KB body", bytes: payload("{}", body: 1024, declaredLength: 100_000_000),
                expected: "header length 100000000 runs past the end of the payload (only 1026 bytes follow"),
    CorruptCase(label: "2^64-1 header length", bytes: payload("{}", declaredLength: UInt64.max), expected: "runs past the end"),
    CorruptCase(label: "empty header", bytes: payload(""), expected: "header is empty"),
    CorruptCase(label: "header not JSON", bytes: payload("{\"x\": [1, 2"), expected: "header is not valid JSON"),
    CorruptCase(label: "header not UTF-8", bytes: payload("{\"\u{FFFD}\": 1}").map { $0 == 0xEF ? 0xFF : $0 }, expected: "header is not valid JSON"),
    CorruptCase(label: "header not an object", bytes: payload("[1, 2]"), expected: "header must be a JSON object, got an array"),
    CorruptCase(label: "entry not an object", bytes: payload(#"{"x": 3}"#), expected: "tensor 'x': expected an object with dtype, shape and data_offsets, got a number"),
    CorruptCase(label: "dtype missing", bytes: payload(#"{"x": {"shape": [], "data_offsets": [0, 4]}}"#, body: 4), expected: "tensor 'x': dtype must be a string, got nothing"),
    CorruptCase(label: "unknown dtype", bytes: payload(#"{"x": \#(entry("\"F8_E4M3\""))}"#, body: 8), expected: "tensor 'x': unknown dtype 'F8_E4M3'; expected one of F32, F16"),
    CorruptCase(label: "shape not a list", bytes: payload(#"{"x": \#(entry("\"F32\"", "\"2\""))}"#, body: 8), expected: "shape must be a list of non-negative integers, got a string"),
    CorruptCase(label: "negative dimension", bytes: payload(#"{"x": \#(entry("\"F32\"", "[-2]"))}"#, body: 8), expected: "shape must be a list of non-negative integers, got -2"),
    CorruptCase(label: "fractional dimension", bytes: payload(#"{"x": \#(entry("\"F32\"", "[2.5]"))}"#, body: 8), expected: "shape must be a list of non-negative integers, got 2.5"),
    CorruptCase(label: "shape product overflow", bytes: payload(#"{"x": \#(entry("\"F32\"", "[4294967296, 4294967296]"))}"#, body: 8), expected: "more elements than fit in memory"),
    // No elements, but trailing dimensions whose product overflows wherever row widths or strides are computed.
    CorruptCase(label: "empty tensor with huge trailing dimensions", bytes: payload(#"{"x": \#(entry("\"F32\"", "[0, 4611686018427387904, 4]", "[0, 0]"))}"#), expected: "more elements than fit in memory"),
    CorruptCase(label: "shape beyond 2^48 elements", bytes: payload(#"{"x": \#(entry("\"U8\"", "[281474976710657]"))}"#, body: 8), expected: "more elements than fit in memory"),
    // 2^61 F64 elements would overflow the byte count; the element bound refuses them first.
    CorruptCase(label: "shape byte count overflow", bytes: payload(#"{"x": \#(entry("\"F64\"", "[2305843009213693952]"))}"#, body: 8), expected: "more elements than fit in memory"),
    CorruptCase(label: "data_offsets missing", bytes: payload(#"{"x": {"dtype": "F32", "shape": [2]}}"#, body: 8), expected: "data_offsets must be a list of two integers [begin, end], got nothing"),
    CorruptCase(label: "data_offsets one integer", bytes: payload(#"{"x": \#(entry("\"F32\"", "[2]", "[8]"))}"#, body: 8), expected: "data_offsets must be a list of two integers"),
    CorruptCase(label: "data_offsets strings", bytes: payload(#"{"x": \#(entry("\"F32\"", "[2]", "[\"0\", \"8\"]"))}"#, body: 8), expected: "data_offsets must be a list of two integers"),
    CorruptCase(label: "negative offset", bytes: payload(#"{"x": \#(entry("\"F32\"", "[2]", "[-8, 0]"))}"#, body: 8), expected: "must not be negative"),
    CorruptCase(label: "end before begin", bytes: payload(#"{"x": \#(entry("\"F32\"", "[0]", "[8, 4]"))}"#, body: 8), expected: "data_offsets end 4 is before begin 8"),
    CorruptCase(label: "offsets out of range", bytes: payload(#"{"x": \#(entry("\"F32\"", "[2]", "[8, 16]"))}"#, body: 8), expected: "run past the end of the data section (8 bytes)"),
    CorruptCase(label: "byte count != product(shape) x dtype size", bytes: payload(#"{"x": \#(entry("\"F32\"", "[3]", "[0, 8]"))}"#, body: 8), expected: "span 8 bytes, but shape [3] of F32 needs 3 x 4 = 12 bytes"),
    CorruptCase(label: "overlapping tensors", bytes: payload(#"{"a": \#(entry()), "b": \#(entry("\"F32\"", "[2]", "[4, 12]"))}"#, body: 12), expected: "tensors 'a' [0, 8] and 'b' [4, 12] overlap"),
    CorruptCase(label: "gap between tensors", bytes: payload(#"{"a": \#(entry()), "b": \#(entry("\"F32\"", "[2]", "[12, 20]"))}"#, body: 20), expected: "tensor 'b' starts at byte 12 of the data section, expected 8"),
    CorruptCase(label: "trailing bytes", bytes: payload(#"{"a": \#(entry())}"#, body: 9), expected: "the data section has 9 bytes but the tensors cover 8"),
    CorruptCase(label: "metadata not an object", bytes: payload(#"{"__metadata__": ["a"]}"#), expected: "__metadata__ must be an object of strings, got an array"),
    CorruptCase(label: "metadata value not a string", bytes: payload(#"{"__metadata__": {"codec": 8}}"#), expected: "__metadata__ value for 'codec' must be a string, got a number"),
]

@Suite struct SafetensorsCorruptTests {
    @Test(arguments: cases)
    func corruptPayloadGivesAClearError(_ corrupt: CorruptCase) {
        #expect {
            try Safetensors.decode(corrupt.bytes)
        } throws: { error in
            guard let error = error as? SafetensorsError else { return false }
            return error.message.contains(corrupt.expected)
        }
        // The same buffer must also be refused, not trapped on, by the bundle decoder.
        #expect(throws: SafetensorsError.self) { try TensorBundle.decode(corrupt.bytes) }
    }

    /// A compressed tensor's shape comes from `__metadata__`: blockwise_8bit
    /// used to compute its block count from a shape of 2^63-1 elements before
    /// checking the parts, and `count + 4095` trapped.
    @Test func compressedShapeTooLargeIsRefused() {
        let descriptor = #"{\"codec\":\"blockwise_8bit\",\"dtype\":\"F32\",\"shape\":[9223372036854775807],\"parts\":[\"\",\".absmax\"]}"#
        let header = #"{"x": \#(entry("\"U8\"", "[1]", "[0, 1]")), "x.absmax": \#(entry("\"F32\"", "[1]", "[1, 5]")), "#
            + #""__metadata__": {"compression": "blockwise_8bit", "compression.x": "\#(descriptor)"}}"#
        #expect {
            try TensorBundle.decode(payload(header, body: 5))
        } throws: { error in
            (error as? SafetensorsError)?.message.contains("too many elements") == true
        }
        // An empty compressed tensor with huge trailing dimensions too.
        let empty = #"{\"codec\":\"uniform_8bit\",\"dtype\":\"F32\",\"shape\":[0,4611686018427387904,4],\"parts\":[\"\",\".codebook\"]}"#
        let emptyHeader = #"{"x": \#(entry("\"U8\"", "[0]", "[0, 0]")), "x.codebook": \#(entry("\"F32\"", "[256]", "[0, 1024]")), "#
            + #""__metadata__": {"compression.x": "\#(empty)"}}"#
        #expect(throws: SafetensorsError.self) { try TensorBundle.decode(payload(emptyHeader, body: 1024)) }
    }

    @Test func theValidNeighboursOfTheseCasesDecode() throws {
        #expect(try Safetensors.decode(payload(#"{"x": \#(entry())}"#, body: 8)).names == ["x"])
        #expect(try Safetensors.decode(payload(#"{"a": \#(entry()), "b": \#(entry("\"F32\"", "[2]", "[8, 16]"))}"#, body: 16)).names == ["a", "b"])
        #expect(try Safetensors.decode(payload("{}   ")).tensors.isEmpty)
    }
}
