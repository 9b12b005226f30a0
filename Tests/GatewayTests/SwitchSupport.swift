import Shared
@testable import Gateway

/// What the gateway's Switch forward returns.
struct SwitchForwardResponse {
    let output: Tensor
    let balancingLoss: Float
    let utilization: Tensor
    /// The response's metadata (routing, jitter_seed), to send back to backward.
    let metadata: [String: String]
}

/// Calls the gateway's Switch forward.
func switchForward(_ url: String, x: Tensor, scores: Tensor, utilization: Tensor? = nil, query: String) async throws -> SwitchForwardResponse {
    let tensors = [("x", x), ("scores", scores)] + (utilization.map { [("utilization", $0)] } ?? [])
    let response = try await HTTPClient.shared.post("\(url)/v1/moe/switch/forward?\(query)", bytes: try TensorBundle(tensors).encode(), timeout: 30)
    let bundle = try TensorBundle.decode(response.body)
    return SwitchForwardResponse(output: bundle["output"]!, balancingLoss: bundle["balancing_loss"]!.scalars[0],
                                 utilization: bundle["utilization"]!, metadata: bundle.metadata)
}

/// Calls the gateway's Switch backward with what forward returned; returns the gradients of x and of the scores.
func switchBackward(_ url: String, x: Tensor, scores: Tensor, gradOutput: Tensor, gradLoss: Float, forward: SwitchForwardResponse,
                    query: String) async throws -> (Tensor, Tensor) {
    let tensors = [("x", x), ("scores", scores), ("grad_output", gradOutput), ("utilization", forward.utilization),
                   ("grad_balancing_loss", try Tensor(shape: [1], scalars: [gradLoss]))]
    let body = try TensorBundle(tensors, metadata: forward.metadata).encode()
    let response = try await HTTPClient.shared.post("\(url)/v1/moe/switch/backward?\(query)", bytes: body, timeout: 30)
    let bundle = try TensorBundle.decode(response.body)
    return (bundle["grad_x"]!, bundle["grad_scores"]!)
}
