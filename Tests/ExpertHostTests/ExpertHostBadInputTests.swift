import Testing
import Shared
@testable import ExpertHost

@Suite struct ExpertHostBadInputTests {
    static func body(_ named: [(String, Tensor)]) -> [UInt8] { try! TensorBundle(named).encode() }

    static let cases: [(name: String, path: String, body: [UInt8], status: Int, mentions: String)] = [
        ("not safetensors", "ffn.0/forward", Array("hello, world".utf8), 400, "input.0"),
        ("missing tensor", "ffn.0/backward", body([("input.0", Tensor(zeros: [2, 8]))]), 400, "grad_output.0"),
        ("extra tensor", "ffn.0/forward", body([("input.0", Tensor(zeros: [2, 8])), ("input.1", Tensor(zeros: [2, 8]))]), 400, "input.1"),
        ("wrong shape", "ffn.0/forward", body([("input.0", Tensor(zeros: [2, 9]))]), 422, "[*, 8]"),
        ("batch mismatch", "ffn.0/backward", body([("input.0", Tensor(zeros: [2, 8])), ("grad_output.0", Tensor(zeros: [3, 8]))]), 422, "batch"),
        ("batch too large", "ffn.0/forward", body([("input.0", Tensor(zeros: [33, 8]))]), 413, "max-batch-size"),
        ("not finite", "ffn.0/backward", body([("input.0", Tensor(repeating: .nan, shape: [2, 8])), ("grad_output.0", Tensor(zeros: [2, 8]))]), 422, "NaN"),
        ("unknown expert", "ffn.9/forward", body([("input.0", Tensor(zeros: [2, 8]))]), 404, "ffn.0"),
        ("bad codec", "ffn.0/forward?codec=zip", body([("input.0", Tensor(zeros: [2, 8]))]), 400, "float16"),
    ]

    @Test(arguments: cases.indices)
    func badInputIsAClearErrorAndTouchesNothing(_ index: Int) async throws {
        let testCase = Self.cases[index]
        try await withExpertHost(["--expert-uids", "ffn.0", "--hidden-dim", "8", "--max-batch-size", "32"]) { url, host in
            let before = host.backends["ffn.0"]!.expert.parametersByName
            do {
                _ = try await HTTPClient.shared.post("\(url)/v1/experts/\(testCase.path)", bytes: testCase.body)
                Issue.record("\(testCase.name): expected \(testCase.status)")
            } catch let error as HTTPClientError {
                #expect(error.status == testCase.status, "\(testCase.name): \(error)")
                #expect(error.serverMessage.contains(testCase.mentions), "\(testCase.name): \(error.serverMessage)")
            }
            #expect(host.backends["ffn.0"]!.expert.parametersByName == before)
            #expect(host.backends["ffn.0"]!.steps == 0)
        }
    }

    @Test func aCompressedRequestAndResponseWork() async throws {
        try await withExpertHost(["--expert-uids", "nop.0", "--expert-class", "nop", "--hidden-dim", "4"]) { url, _ in
            let input = try Tensor(shape: [2, 4], scalars: [1, 2, 3, 4, 5, 6, 7, 8])
            let response = try await HTTPClient.shared.post("\(url)/v1/experts/nop.0/forward?codec=float16",
                                                            bytes: try TensorBundle([("input.0", input)]).encode(codec: .blockwise8))
            let output = try #require(try TensorBundle.decode(response.body)["output.0"])
            #expect(maxRelativeError(output, input) < 0.05)
        }
    }
}
