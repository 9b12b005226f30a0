import Shared

/// A Decentralized Mixture-of-Experts layer: beam search picks each sample's
/// experts, one request per chosen expert carries all its samples, and the
/// output mixes the answers with a softmax over the answering experts' scores.
/// Forward and backward are independent calls (see `RoutingRecord`).
public struct MixtureLayer: Sendable {
    let directory: any ExpertDirectory
    let client: HTTPClient
    let metrics: Metrics?

    /// Sent with every expert call: the gateway's own token, if it has one.
    let expertHeaders: [(name: String, value: String)]

    public init(directory: any ExpertDirectory, client: HTTPClient = .shared, metrics: Metrics? = nil, expertToken: String? = nil) {
        expertHeaders = expertToken.map { [(name: "Authorization", value: "Bearer \($0)")] } ?? []
        self.directory = directory
        self.client = client
        self.metrics = metrics
    }

    // MARK: Forward

    /// - Parameters:
    ///   - x: the input batch, `[batch, ...]`, as the experts take it.
    ///   - scores: gating scores `[batch, sum(gridSize)]`, the grid's dimensions side by side.
    /// - Returns: the mixed output `[batch, ...]` and the routing record for backward.
    /// - Throws: `HTTPError`: 422 for shapes that do not fit, 503 when a sample got fewer than k_min answers,
    ///   504 when forward_timeout passed while searching the DHT. The timeout bounds the whole call: the
    ///   search and the experts' answers.
    public func forward(x: Tensor, scores: Tensor, _ parameters: MixtureParameters) async throws(HTTPError) -> (output: Tensor, routing: RoutingRecord) {
        let deadline = Deadline(after: parameters.forwardTimeout)
        let batch = try checkBatch(x, scores, parameters)
        let candidates = try await chooseExperts(scores, batch: batch, parameters, deadline: deadline)
        let plan = CallPlan(candidates.map { $0.map(\.expert) })
        let results = await callForward(x: x, groups: plan.groups, parameters, deadline: deadline) { results in
            answerCounts(results, plan.groups, batch).allSatisfy { $0 >= parameters.kMin }
        }
        return try mix(candidates, plan, results, batch: batch, example: x, parameters)
    }

    /// Softmax-weighted sums of the answers per sample, and the routing record.
    private func mix(_ candidates: [[BeamSearch.Candidate]], _ plan: CallPlan, _ results: [Result<Tensor, any Error>?],
                     batch: Int, example: Tensor, _ parameters: MixtureParameters) throws(HTTPError) -> (output: Tensor, routing: RoutingRecord) {
        let outputs: [Tensor?] = results.map { result in if case .success(let output)? = result { output } else { nil } }
        var outputShape: [Int]?
        for answer in outputs {
            guard let answer else { continue }
            let shape = Array(answer.shape.dropFirst())
            guard outputShape == nil || outputShape == shape else {
                throw .unprocessable("experts under \(parameters.prefix) answered with different output shapes \(outputShape!) and \(shape)")
            }
            outputShape = shape
        }
        let shape = outputShape ?? Array(example.shape.dropFirst())
        let width = shape.reduce(1, *)
        var output = Tensor(zeros: [batch] + shape)
        var routing: [[RoutingRecord.Route]] = []
        routing.reserveCapacity(batch)
        var answered: [(candidate: BeamSearch.Candidate, row: ArraySlice<Float>)] = []
        for sample in 0..<batch {
            answered.removeAll(keepingCapacity: true)
            for (candidate, slot) in zip(candidates[sample], plan.slots[sample]) {
                if let answer = outputs[slot.call] { answered.append((candidate, answer.row(slot.row))) }
            }
            metrics?.observe("answers_per_sample", Double(answered.count))
            guard answered.count >= parameters.kMin else {
                throw HTTPError(status: 503, code: "not_enough_experts", message: "sample \(sample) got \(answered.count) answers, "
                    + "fewer than k_min = \(parameters.kMin), within forward_timeout \(parameters.forwardTimeout) s "
                    + "(chose \(candidates[sample].count) experts; \(failureSummary(results, plan.groups)))")
            }
            let weights = MixtureMath.weights(scores: answered.map(\.candidate.score))
            routing.append(zip(answered, weights).map { RoutingRecord.Route(uid: $0.candidate.expert.uid, url: $0.candidate.expert.url, weight: $1) })
            for ((_, row), weight) in zip(answered, weights) { MixtureMath.addScaled(row, weight, into: &output.scalars, at: sample * width) }
        }
        return (output, RoutingRecord(samples: routing))
    }

    // MARK: Backward

    /// - Returns: the gradient of the input and of the gating scores `[batch, sum(gridSize)]`.
    ///   An expert that fails contributes zero gradient.
    /// - Throws: `HTTPError` 503 when a sample got fewer than backward_k_min answers.
    public func backward(x: Tensor, gradOutput: Tensor, routing: RoutingRecord, _ parameters: MixtureParameters) async throws(HTTPError) -> (gradX: Tensor, gradScores: Tensor) {
        let batch = x.shape.first ?? 0
        guard gradOutput.shape.first == batch, routing.samples.count == batch else {
            throw .unprocessable("x, grad_output and the routing record must have the same batch size, got "
                + "\(x.shape.first ?? 0), \(gradOutput.shape.first ?? 0) and \(routing.samples.count)")
        }
        // One call per expert, in the order the record first names them, with its samples and their weights.
        var callIndex: [ExpertInfo: Int] = [:]
        var groups: [(ExpertInfo, [(sample: Int, weight: Float)])] = []
        for (sample, routes) in routing.samples.enumerated() {
            for route in routes {
                let expert = ExpertInfo(uid: route.uid, url: route.url)
                let call = callIndex[expert] ?? {
                    groups.append((expert, []))
                    callIndex[expert] = groups.count - 1
                    return groups.count - 1
                }()
                groups[call].1.append((sample, route.weight))
            }
        }
        let results = await callBackward(x: x, gradOutput: gradOutput, groups: groups, parameters, deadline: Deadline(after: parameters.backwardTimeout))

        // grad_x sums the answering experts' input gradients; each answer's projection g . y_j feeds
        // the score gradients, whose per-sample weighted mean covers the experts that answered.
        var gradX = Tensor(zeros: x.shape)
        var answered = [Int](repeating: 0, count: batch)
        var projections: [[Float]] = Array(repeating: [], count: groups.count)
        var weightedMeans = [Float](repeating: 0, count: batch)
        let width = x.rowSize
        for (call, result) in results.enumerated() {
            guard case .success(let tensors)? = result else { continue }
            projections[call] = groups[call].1.enumerated().map { position, row in
                answered[row.sample] += 1
                MixtureMath.addScaled(tensors[0].row(position), 1, into: &gradX.scalars, at: row.sample * width)
                let projection = MixtureMath.dot(tensors[1].row(position), gradOutput.row(row.sample))
                weightedMeans[row.sample] += row.weight * projection
                return projection
            }
        }
        if let sample = answered.indices.first(where: { answered[$0] < parameters.backwardKMin }) {
            throw HTTPError(status: 503, code: "not_enough_experts", message: "sample \(sample) got \(answered[sample]) backward answers, "
                + "fewer than backward_k_min = \(parameters.backwardKMin), within backward_timeout \(parameters.backwardTimeout) s "
                + "(\(failureSummary(results, groups.map { ($0.0, []) })))")
        }
        var gradScores = Tensor(zeros: [batch, parameters.scoreCount])
        let offsets = parameters.gridSize.indices.map { parameters.gridSize[..<$0].reduce(0, +) }
        for (call, (expert, rows)) in groups.enumerated() where !projections[call].isEmpty {
            // The score columns of the expert's coordinates, one per grid dimension.
            let columns = expert.uid.coordinates.enumerated().map { offsets[$0] + $1 }
            for (row, projection) in zip(rows, projections[call]) {
                let gradient = MixtureMath.scoreGradient(weight: row.weight, projection: projection, weightedMean: weightedMeans[row.sample])
                for column in columns { gradScores.scalars[row.sample * parameters.scoreCount + column] += gradient }
            }
        }
        return (gradX, gradScores)
    }

    // MARK: Helpers

    func checkBatch(_ x: Tensor, _ scores: Tensor, _ parameters: MixtureParameters) throws(HTTPError) -> Int {
        guard x.rank >= 2, x.shape[0] > 0 else {
            throw .unprocessable("x must be a batch [batch, ...] with at least one sample, got shape \(x.shape)")
        }
        guard scores.shape == [x.shape[0], parameters.scoreCount] else {
            throw .unprocessable("scores must be [\(x.shape[0]), \(parameters.scoreCount)] (the batch, and the grid "
                + "\(parameters.gridSize.map(String.init).joined(separator: "x"))'s dimensions side by side), got \(scores.shape)")
        }
        guard scores.scalars.allSatisfy(\.isFinite) else { throw .unprocessable("scores contain NaN or infinity") }
        return x.shape[0]
    }

    func splitScores(_ row: ArraySlice<Float>, _ gridSize: [Int]) -> [[Float]] {
        var start = row.startIndex
        return gridSize.map { size in
            defer { start += size }
            return Array(row[start..<(start + size)])
        }
    }

    /// Each chosen expert with the samples that chose it, in a fixed order.
    func group(_ choices: [[ExpertInfo]]) -> [(ExpertInfo, [Int])] {
        CallPlan(choices).groups
    }

    // MARK: Shared with the Switch layer

    /// Each sample's best `parameters.kBest` alive experts by beam search over the DHT, by `deadline`.
    /// - Throws: `HTTPError` 503 when the DHT cannot be searched, 504 when the deadline passed first.
    func chooseExperts(_ scores: Tensor, batch: Int, _ parameters: MixtureParameters, deadline: Deadline) async throws(HTTPError) -> [[BeamSearch.Candidate]] {
        let perDimension = (0..<batch).map { sample in splitScores(scores.row(sample), parameters.gridSize) }
        let started = Clock.now
        let search = BeamSearch(prefix: parameters.prefix, gridSize: parameters.gridSize)
        let outcome = await deadline.run(cancellingLateWork: true) { [directory] () async -> Result<[[BeamSearch.Candidate]], any Error> in
            do {
                return .success(try await search.findBestExperts(scores: perDimension, beamSize: parameters.kBest) { prefixes in
                    try await directory.children(of: prefixes)
                })
            } catch {
                return .failure(error)
            }
        }
        switch outcome {
        case .success(let candidates)?:
            metrics?.observe("beam_search_seconds", Clock.now - started)
            return candidates
        case .failure(let error)?:
            throw .serviceUnavailable("cannot search the DHT for experts under \(parameters.prefix): \(error)")
        case nil:
            throw .gatewayTimeout("forward_timeout (\(parameters.forwardTimeout) s) passed while searching the DHT for experts under "
                + "\(parameters.prefix); retry, or give the call a longer forward_timeout")
        }
    }

    /// One forward request per expert with its samples' rows of `x`, in parallel, collected as `collect` does
    /// (until `satisfied`, then timeout_after_k_min more, by `deadline`).
    func callForward(x: Tensor, groups: [(ExpertInfo, [Int])], _ parameters: MixtureParameters, deadline: Deadline,
                     satisfied: ([Result<Tensor, any Error>?]) -> Bool) async -> [Result<Tensor, any Error>?] {
        // Each call builds its own body, so the first calls are on their way while later bodies are built.
        let calls: [@Sendable () async throws -> Tensor] = groups.map { expert, samples in
            { [client, metrics, expertHeaders] in
                let body = payload([("input.0", x.gatherRows(samples))])
                return try await callExpert(client, metrics, expert, "forward", body, headers: expertHeaders, timeout: deadline.remaining,
                                            rows: samples.count, detectAnomalies: parameters.detectAnomalies)[0]
            }
        }
        return await collect(calls, timeout: deadline.remaining, grace: parameters.timeoutAfterKMin, satisfied: satisfied)
    }

    /// One backward request per expert, in parallel by `deadline`: its samples' rows of `x` and of
    /// `gradOutput` scaled by each sample's weight (the expert's output entered the mixture scaled by it).
    /// A success is `[grad_input [rows, ...x], output [rows, ...gradOutput]]`; a wrong-shaped answer is a failure.
    func callBackward(x: Tensor, gradOutput: Tensor, groups: [(ExpertInfo, [(sample: Int, weight: Float)])],
                      _ parameters: MixtureParameters, deadline: Deadline) async -> [Result<[Tensor], any Error>?] {
        let calls: [@Sendable () async throws -> [Tensor]] = groups.map { expert, rows in
            { [client, metrics, expertHeaders] in
                let samples = rows.map(\.sample)
                let body = payload([("input.0", x.gatherRows(samples)), ("grad_output.0", gradOutput.gatherRows(samples, scaledBy: rows.map(\.weight)))])
                let tensors = try await callExpert(client, metrics, expert, "backward", body, headers: expertHeaders, timeout: deadline.remaining,
                                                   rows: rows.count, detectAnomalies: parameters.detectAnomalies)
                guard tensors[0].shape == [rows.count] + x.shape.dropFirst(), tensors[1].rowSize == gradOutput.rowSize else {
                    throw HTTPError.unprocessable("\(expert.uid) answered backward with shapes \(tensors[0].shape) and \(tensors[1].shape), "
                        + "not [\(rows.count), ...] like x \(x.shape) and grad_output \(gradOutput.shape)")
                }
                return tensors
            }
        }
        return await collect(calls, timeout: deadline.remaining, grace: deadline.remaining) { _ in false }
    }
}
