import Testing
@testable import Shared

/// Inputs that `make fuzz` found wrong answers or crashes with (Tests/Fuzz), each kept as a test
/// of the ordinary suite; the fuzzer's own inputs are also in its seed corpus (`regression-*`).
@Suite struct FuzzRegressionTests {
    /// router: a body with the header `Content-Type: ;` (or an empty one) trapped every service on a
    /// route that checks media types (`split(separator:)` of ";" has no first element).
    @Test(arguments: [";", "", " ; charset=utf-8"])
    func contentTypeWithoutAMediaTypeIsRefused(contentType: String) async throws {
        var router = Router()
        exampleRoutes(&router)
        let request = HTTPRequest(method: "POST", path: "/json", headers: ["Content-Type": contentType], body: Array("{}".utf8))
        let (response, route) = await router.respond(to: request)
        #expect(response.status == 415 && route == "/json")
        #expect(String(decoding: response.body, as: UTF8.self).contains("expected application/json"))
        // The same over HTTP: the server answers and keeps serving.
        try await withTestServer(exampleRoutes) { url, _ in
            let sent = HTTPClientRequest(method: "POST", url: "\(url)/json", headers: [("Content-Type", ";")], body: Array("{}".utf8))
            await #expect { _ = try await HTTPClient.shared.send(sent) } throws: { ($0 as? HTTPClientError)?.status == 415 }
            let health = try await HTTPClient.shared.get("\(url)/healthz").json()
            #expect(health == ["status": "ok"])
        }
    }

    /// codecs: a `none`, `float16` or `bfloat16` tensor whose stored part is flat decoded to the
    /// part's shape instead of the one its description gives.
    @Test(arguments: [CompressionCodec.none, .float16, .bfloat16])
    func castCodecsDecodeToTheDescribedShape(codec: CompressionCodec) throws {
        let dtype: DType = [.none: .f32, .float16: .f16, .bfloat16: .bf16][codec]!
        let flat = try WireTensor(Tensor(shape: [6], scalars: [1, 2, 3, 4, 5, 6]), as: dtype)
        let described = CompressedTensor(codec: codec, shape: [2, 3], parts: [.init("", flat)])
        #expect(try described.decompressed() == Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]))
        // The fuzzer's case: no elements, three dimensions.
        let empty = CompressedTensor(codec: codec, shape: [24, 0, 24], parts: [.init("", try WireTensor(dtype: dtype, shape: [0], bytes: []))])
        #expect(try empty.decompressed().shape == [24, 0, 24])
        // The same through a bundle, as a peer sends it.
        let payload = try Safetensors.encode([("x", flat)], metadata: [
            "compression.x": #"{"codec":"\#(codec.rawValue)","dtype":"F32","shape":[2,3],"parts":[""]}"#])
        #expect(try TensorBundle.decode(payload)["x"]?.shape == [2, 3])
    }
}
