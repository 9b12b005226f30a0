import Shared

// Helpers of the mixture layers (softmax and Switch): expert calls, their
// bookkeeping and error summaries.

/// Per sample, how many chosen experts answered so far.
func answerCounts(_ results: [Result<Tensor, any Error>?], _ groups: [(ExpertInfo, [Int])], _ batch: Int) -> [Int] {
    var counts = [Int](repeating: 0, count: batch)
    for (result, group) in zip(results, groups) {
        if case .success? = result { for sample in group.1 { counts[sample] += 1 } }
    }
    return counts
}

/// For every expert that answered: where each of its samples sits in its output.
func answerTable(_ results: [Result<Tensor, any Error>?], _ groups: [(ExpertInfo, [Int])]) -> [ExpertInfo: (samples: [Int: Int], output: Tensor)] {
    var table: [ExpertInfo: (samples: [Int: Int], output: Tensor)] = [:]
    for (result, (expert, samples)) in zip(results, groups) {
        guard case .success(let output)? = result else { continue }
        table[expert] = (Dictionary(uniqueKeysWithValues: samples.enumerated().map { ($1, $0) }), output)
    }
    return table
}

/// "2 failed (ffn.0.1: timed out ...), 1 cancelled" for error messages.
func failureSummary<T>(_ results: [Result<T, any Error>?], _ groups: [(ExpertInfo, [Int])]) -> String {
    var failed: [String] = []
    var unfinished = 0
    for (result, (expert, _)) in zip(results, groups) {
        switch result {
        case .failure(let error)?: failed.append("\(expert.uid): \(error)")
        case nil: unfinished += 1
        default: break
        }
    }
    return "\(failed.count) failed" + (failed.isEmpty ? "" : " (\(failed.prefix(3).joined(separator: "; ")))") + ", \(unfinished) cut off"
}

/// A safetensors body of float tensors.
func payload(_ tensors: [(String, Tensor)]) -> [UInt8] {
    try! TensorBundle(tensors).encode()
}

/// The most an expert may answer to a request of `requestBytes`: twice the
/// request (backward answers input gradients and outputs, each as large as
/// an input) plus a header; an answer beyond it is not an honest expert's.
func expertAnswerCap(_ requestBytes: Int) -> Int {
    2 * requestBytes + (64 << 10)
}

/// One call to an expert host; the answer must hold `rows` samples of finite
/// values (when asked), else the expert counts as failed.
func callExpert(_ client: HTTPClient, _ metrics: Metrics?, _ expert: ExpertInfo, _ pass: String, _ body: [UInt8],
                headers: [(name: String, value: String)], timeout: Double, rows: Int, detectAnomalies: Bool) async throws -> [Tensor] {
    let started = Clock.now
    let labels = ["expert": expert.uid.description, "pass": pass]
    do {
        let response = try await client.post("\(expert.url)/v1/experts/\(expert.uid)/\(pass)", bytes: body, headers: headers, timeout: timeout,
                                             maxResponseBytes: expertAnswerCap(body.count))
        // The expert's time ends with its answer: reading and checking it is the gateway's own work.
        let answered = Clock.now - started
        let bundle = try TensorBundle.decode(response.body)
        let names = pass == "forward" ? ["output.0"] : ["grad_input.0", "output.0"]
        let tensors = try names.map { name in
            guard let tensor = bundle[name], tensor.shape.first == rows else {
                throw HTTPError.unprocessable("\(expert.uid) answered without \(name) for \(rows) samples")
            }
            if detectAnomalies && !tensor.scalars.allSatisfy(\.isFinite) {
                throw HTTPError.unprocessable("\(expert.uid) answered with NaN or infinity")
            }
            return tensor
        }
        metrics?.observe("expert_seconds", labels: labels, answered)
        return tensors
    } catch {
        metrics?.increment("expert_failures_total", labels: labels)
        throw error
    }
}
