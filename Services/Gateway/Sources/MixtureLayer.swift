import Shared

/// A Decentralized Mixture-of-Experts layer: beam search picks each sample's
/// experts, one request per chosen expert carries all its samples, and the
/// output mixes the answers with a softmax over the answering experts' scores.
/// Forward and backward are independent calls (see `RoutingRecord`).
public struct MixtureLayer: Sendable {
    let directory: any ExpertDirectory
    let client: HTTPClient
    let metrics: Metrics?

    public init(directory: any ExpertDirectory, client: HTTPClient = .shared, metrics: Metrics? = nil) {
        self.directory = directory
        self.client = client
        self.metrics = metrics
    }

    // MARK: Forward

    /// - Parameters:
    ///   - x: the input batch, `[batch, ...]`, as the experts take it.
    ///   - scores: gating scores `[batch, sum(gridSize)]`, the grid's dimensions side by side.
    /// - Returns: the mixed output `[batch, ...]` and the routing record for backward.
    /// - Throws: `HTTPError`: 422 for shapes that do not fit, 503 when a sample got fewer than k_min answers.
    public func forward(x: Tensor, scores: Tensor, _ parameters: MixtureParameters) async throws(HTTPError) -> (output: Tensor, routing: RoutingRecord) {
        let batch = try checkBatch(x, scores, parameters)
        let candidates = try await chooseExperts(scores, batch: batch, parameters)
        let groups = group(candidates.map { $0.map(\.expert) })
        let results = await callForward(x: x, groups: groups, parameters) { results in
            answerCounts(results, groups, batch).allSatisfy { $0 >= parameters.kMin }
        }
        let answers = answerTable(results, groups)
        return try mix(candidates, answers: answers, failures: failureSummary(results, groups), batch: batch,
                       example: x, parameters)
    }

    /// Softmax-weighted sums of the answers per sample, and the routing record.
    private func mix(_ candidates: [[BeamSearch.Candidate]], answers: [ExpertInfo: (samples: [Int: Int], output: Tensor)],
                     failures: String, batch: Int, example: Tensor, _ parameters: MixtureParameters) throws(HTTPError) -> (output: Tensor, routing: RoutingRecord) {
        var outputShape: [Int]?
        for (_, answer) in answers {
            let shape = Array(answer.output.shape.dropFirst())
            guard outputShape == nil || outputShape == shape else {
                throw .unprocessable("experts under \(parameters.prefix) answered with different output shapes \(outputShape!) and \(shape)")
            }
            outputShape = shape
        }
        let shape = outputShape ?? Array(example.shape.dropFirst())
        let width = shape.reduce(1, *)
        var output = Tensor(zeros: [batch] + shape)
        var routing: [[RoutingRecord.Route]] = []
        for sample in 0..<batch {
            let answered = candidates[sample].compactMap { candidate in
                answers[candidate.expert].flatMap { answer in answer.samples[sample].map { (candidate, answer.output.row($0)) } }
            }
            metrics?.observe("answers_per_sample", Double(answered.count))
            guard answered.count >= parameters.kMin else {
                throw HTTPError(status: 503, code: "not_enough_experts", message: "sample \(sample) got \(answered.count) answers, "
                    + "fewer than k_min = \(parameters.kMin), within forward_timeout \(parameters.forwardTimeout) s "
                    + "(chose \(candidates[sample].count) experts; \(failures))")
            }
            let weights = MixtureMath.weights(scores: answered.map(\.0.score))
            routing.append(zip(answered, weights).map { RoutingRecord.Route(uid: $0.0.expert.uid, url: $0.0.expert.url, weight: $1) })
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
        var groups: [ExpertInfo: [(sample: Int, weight: Float)]] = [:]
        for (sample, routes) in routing.samples.enumerated() {
            for route in routes { groups[ExpertInfo(uid: route.uid, url: route.url), default: []].append((sample, route.weight)) }
        }
        let experts = Array(groups.keys)
        let results = await callBackward(x: x, gradOutput: gradOutput, groups: experts.map { ($0, groups[$0]!) }, parameters)

        var gradX = Tensor(zeros: x.shape)
        var gradScores = Tensor(zeros: [batch, parameters.scoreCount])
        var answered = [Int](repeating: 0, count: batch)
        var perSample: [Int: [(uid: ExpertUID, weight: Float, projection: Float)]] = [:]
        for (expert, result) in zip(experts, results) {
            guard case .success(let tensors)? = result else { continue }
            let width = x.rowSize
            for (position, row) in groups[expert]!.enumerated() {
                answered[row.sample] += 1
                MixtureMath.addScaled(tensors[0].row(position), 1, into: &gradX.scalars, at: row.sample * width)
                perSample[row.sample, default: []].append((expert.uid, row.weight, MixtureMath.dot(tensors[1].row(position), gradOutput.row(row.sample))))
            }
        }
        if let sample = answered.indices.first(where: { answered[$0] < parameters.backwardKMin }) {
            throw HTTPError(status: 503, code: "not_enough_experts", message: "sample \(sample) got \(answered[sample]) backward answers, "
                + "fewer than backward_k_min = \(parameters.backwardKMin), within backward_timeout \(parameters.backwardTimeout) s "
                + "(\(failureSummary(results, experts.map { ($0, []) })))")
        }
        let offsets = parameters.gridSize.indices.map { parameters.gridSize[..<$0].reduce(0, +) }
        for (sample, entries) in perSample {
            let scoreGradients = MixtureMath.scoreGradients(projections: entries.map(\.projection), weights: entries.map(\.weight))
            for (entry, gradient) in zip(entries, scoreGradients) {
                for (dimension, coordinate) in entry.uid.coordinates.enumerated() {
                    gradScores.scalars[sample * parameters.scoreCount + offsets[dimension] + coordinate] += gradient
                }
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
        var samples: [ExpertInfo: [Int]] = [:]
        var order: [ExpertInfo] = []
        for (sample, experts) in choices.enumerated() {
            for expert in experts {
                if samples[expert] == nil { order.append(expert) }
                samples[expert, default: []].append(sample)
            }
        }
        return order.map { ($0, samples[$0]!) }
    }

    // MARK: Shared with the Switch layer

    /// Each sample's best `parameters.kBest` alive experts by beam search over the DHT.
    func chooseExperts(_ scores: Tensor, batch: Int, _ parameters: MixtureParameters) async throws(HTTPError) -> [[BeamSearch.Candidate]] {
        let perDimension = (0..<batch).map { sample in splitScores(scores.row(sample), parameters.gridSize) }
        let started = Clock.now
        let search = BeamSearch(prefix: parameters.prefix, gridSize: parameters.gridSize)
        do {
            let candidates = try await search.findBestExperts(scores: perDimension, beamSize: parameters.kBest) { prefixes in
                try await directory.children(of: prefixes)
            }
            metrics?.observe("beam_search_seconds", Clock.now - started)
            return candidates
        } catch {
            throw .serviceUnavailable("cannot search the DHT for experts under \(parameters.prefix): \(error)")
        }
    }

    /// One forward request per expert with its samples' rows of `x`, in parallel, collected as `collect` does
    /// (until `satisfied`, then timeout_after_k_min more, within forward_timeout).
    func callForward(x: Tensor, groups: [(ExpertInfo, [Int])], _ parameters: MixtureParameters,
                     satisfied: ([Result<Tensor, any Error>?]) -> Bool) async -> [Result<Tensor, any Error>?] {
        let calls: [@Sendable () async throws -> Tensor] = groups.map { expert, samples in
            let body = payload([("input.0", x.gatherRows(samples))])
            return { [client, metrics] in
                try await callExpert(client, metrics, expert, "forward", body, timeout: parameters.forwardTimeout, rows: samples.count,
                                     detectAnomalies: parameters.detectAnomalies)[0]
            }
        }
        return await collect(calls, timeout: parameters.forwardTimeout, grace: parameters.timeoutAfterKMin, satisfied: satisfied)
    }

    /// One backward request per expert, in parallel within backward_timeout: its samples' rows of `x` and of
    /// `gradOutput` scaled by each sample's weight (the expert's output entered the mixture scaled by it).
    /// A success is `[grad_input [rows, ...x], output [rows, ...gradOutput]]`; a wrong-shaped answer is a failure.
    func callBackward(x: Tensor, gradOutput: Tensor, groups: [(ExpertInfo, [(sample: Int, weight: Float)])],
                      _ parameters: MixtureParameters) async -> [Result<[Tensor], any Error>?] {
        let calls: [@Sendable () async throws -> [Tensor]] = groups.map { expert, rows in
            var gradients = gradOutput.gatherRows(rows.map(\.sample))
            let width = gradients.rowSize
            for (position, row) in rows.enumerated() {
                for index in (position * width)..<((position + 1) * width) { gradients.scalars[index] *= row.weight }
            }
            let body = payload([("input.0", x.gatherRows(rows.map(\.sample))), ("grad_output.0", gradients)])
            return { [client, metrics] in
                let tensors = try await callExpert(client, metrics, expert, "backward", body, timeout: parameters.backwardTimeout,
                                                   rows: rows.count, detectAnomalies: parameters.detectAnomalies)
                guard tensors[0].shape == [rows.count] + x.shape.dropFirst(), tensors[1].rowSize == gradOutput.rowSize else {
                    throw HTTPError.unprocessable("\(expert.uid) answered backward with shapes \(tensors[0].shape) and \(tensors[1].shape), "
                        + "not [\(rows.count), ...] like x \(x.shape) and grad_output \(gradOutput.shape)")
                }
                return tensors
            }
        }
        return await collect(calls, timeout: parameters.backwardTimeout, grace: parameters.backwardTimeout) { _ in false }
    }
}
