@testable import Shared

extension FuzzTarget {
    /// Every JSON body and header: jansson through `JSON.parse`, and the direct reader and writer
    /// that must agree with it wherever they answer.
    static let json = FuzzTarget(
        name: "json",
        about: "jansson (JSON.janssonParse, janssonSerializedBytes) against the direct reader and writer",
        seeds: { JSONSeeds.documents.map { ($0.name, Array(seed: $0.text)) } }
    ) { bytes in
        let direct = JSON.parseDirect(bytes)
        let parsed = try? JSON.janssonParse(bytes)
        if let direct {
            fuzzCheck(parsed == direct, "parseDirect read \(direct.serialized()) where jansson read \(parsed.map { $0.serialized() } ?? "an error")")
        }
        guard let parsed else { return }
        // What jansson writes, it reads back as the same value; the direct writer writes the same bytes.
        let written = parsed.janssonSerializedBytes()
        let reread = try? JSON.janssonParse(written)
        fuzzCheck(reread == parsed, "\(String(decoding: written, as: UTF8.self)) reads back as \(reread.map { $0.serialized() } ?? "an error")")
        if let directBytes = parsed.serializedBytesDirect() {
            fuzzCheck(directBytes == written, "serializedBytesDirect wrote \(String(decoding: directBytes, as: UTF8.self)), jansson \(String(decoding: written, as: UTF8.self))")
        }
        // A value read generically answers every typed accessor without trapping.
        _ = (parsed.intValue, parsed.doubleValue, parsed.typeName, parsed["key"], try? JSONObjectReader(parsed).optional("key", JSONObjectReader.int))
    }
}

enum JSONSeeds {
    static let documents: [(name: String, text: String)] = [
        ("object", #"{"key": "value", "n": 12, "list": [1, -2, 3.5, true, false, null], "nested": {"a": {"b": []}}}"#),
        ("escapes", #"["\"\\\/\b\f\n\r\t", "\u00e9\u4e2d\ud83d\ude00", "caf\u00e9"]"#),
        ("numbers", "[0, -0, 9223372036854775807, -9223372036854775808, 1e300, 1.5E-7, 0.1, 18446744073709551616]"),
        ("compact", #"{"a":[{"uid":"ffn.0.1","weight":0.25}],"b":"x"}"#),
        ("scalar", "\"just a string\""),
        ("deep", String(repeating: "[", count: 70) + String(repeating: "]", count: 70)),
        ("duplicate-keys", #"{"a": 1, "a": 2}"#),
        ("safetensors-header", #"{"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"__metadata__":{"k":"v"}}"#),
    ]
}
