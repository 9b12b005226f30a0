import Testing
import Shared
@testable import Gateway

/// Tensors with no elements but huge trailing dimensions used to pass the
/// safetensors checks (their element count is 0), leaving any code that
/// multiplies trailing dimensions (row widths, strides) to overflow. They are
/// now a 400 when the body is read. (Before, this request got as far as a 503.)
@Suite struct HostileShapeTests {
    /// A safetensors body of F32 tensors with the given shapes (JSON text) and element counts, all zeros.
    static func tensors(_ entries: [(name: String, shape: String, count: Int)]) -> [UInt8] {
        var offset = 0
        let fields = entries.map { entry -> String in
            defer { offset += 4 * entry.count }
            return #""\#(entry.name)": {"dtype": "F32", "shape": \#(entry.shape), "data_offsets": [\#(offset), \#(offset + 4 * entry.count)]}"#
        }
        let header = Array("{\(fields.joined(separator: ", "))}".utf8)
        return withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header + [UInt8](repeating: 0, count: offset)
    }

    @Test func emptyRowsWithHugeTrailingDimensionsAreABadRequest() async {
        let router = Gateway(directory: EmptyDirectory(), metrics: Metrics(namespace: "test"), seal: testSeal).makeRouter()
        // One sample whose rows hold no elements: [1, 0, 2^62, 4].
        let body = Self.tensors([("x", "[1, 0, 4611686018427387904, 4]", 0), ("scores", "[1, 4]", 4)])
        let request = HTTPRequest(method: "POST", path: "/v1/moe/forward", query: ["prefix": "ffn.", "grid": "2,2"],
                                  headers: ["Content-Type": "application/octet-stream"], body: body)
        let (response, _) = await router.respond(to: request)
        #expect(response.status == 400)
        #expect(String(decoding: response.body, as: UTF8.self).contains("more elements than fit in memory"))
    }
}
