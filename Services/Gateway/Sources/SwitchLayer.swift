import Shared

/// The Switch variant of the mixture (Switch Transformers, as the reference's
/// RemoteSwitchMixtureOfExperts): beam search picks one expert per sample,
/// weighted by the product of per-dimension softmaxes, with a residual
/// connection and a load-balancing loss (see `SwitchMath`).
///
/// State: the gateway keeps none. The running utilisation per grid dimension
/// (a no-gradient buffer in the reference) lives with the client, like the
/// routing record: forward takes it (or starts from uniform) and returns the
/// updated one, which the client sends to backward and to its next forward.
/// The jitter noise is fixed by a seed that forward returns, so backward
/// recomputes the same jittered scores on any replica.
public struct SwitchLayer: Sendable {
    let layer: MixtureLayer

    public init(layer: MixtureLayer) {
        self.layer = layer
    }

    /// What a Switch forward returns.
    public struct ForwardResult: Sendable {
        /// `x + w * expert output` per sample (x alone where the expert failed).
        public var output: Tensor
        /// The load-balancing loss, shape [1].
        public var balancingLoss: Tensor
        /// The updated utilisation [sum(grid)], to send to backward and to the next forward.
        public var utilization: Tensor
        public var routing: RoutingRecord
        /// The jitter noise's seed, to send to backward (nil without jitter).
        public var seed: UInt64?
    }

    /// - Parameter utilization: the running utilisation [sum(grid)] from the previous call, or nil to start uniform.
    /// - Throws: `HTTPError` 422 for shapes that do not fit, 503 when a sample got fewer than k_min answers.
    public func forward(x: Tensor, scores: Tensor, utilization: Tensor?, _ parameters: SwitchParameters) async throws(HTTPError) -> ForwardResult {
        let mixture = parameters.mixture
        let deadline = Deadline(after: mixture.forwardTimeout)
        let math = SwitchMath(gridSize: mixture.gridSize)
        let batch = try layer.checkBatch(x, scores, mixture)
        let previous = try utilization.map { tensor throws(HTTPError) in try checkUtilization(tensor, math) } ?? math.initialUtilization
        let seed = parameters.jitter > 0 ? parameters.seed ?? UInt64.random(in: .min ... .max) : nil
        let (jittered, _) = jitter(scores, parameters, seed: seed)

        let candidates = try await layer.chooseExperts(jittered, batch: batch, mixture, deadline: deadline)
        let groups = layer.group(candidates.map { $0.map(\.expert) })
        let rowShape = Array(x.shape.dropFirst())
        let results = await layer.callForward(x: x, groups: groups, mixture, deadline: deadline) { results in
            answerCounts(results, groups, batch).allSatisfy { $0 >= mixture.kMin }
        }.map { result in
            // The residual adds the expert's output to x: any other shape is a failed answer.
            result.map { result in result.flatMap { output in
                Array(output.shape.dropFirst()) == rowShape ? .success(output)
                    : .failure(HTTPError.unprocessable("expert answered with rows \(Array(output.shape.dropFirst())), not \(rowShape) like x"))
            } }
        }
        let answers = answerTable(results, groups)

        var output = x
        var routes: [[RoutingRecord.Route]] = []
        var chosen: [[Int]] = []
        let probabilities = (0..<batch).map { math.probabilities(jittered.row($0)) }
        let width = x.rowSize
        for sample in 0..<batch {
            guard let candidate = candidates[sample].first, let answer = answers[candidate.expert], let position = answer.samples[sample] else {
                layer.metrics?.observe("answers_per_sample", 0)
                guard mixture.kMin == 0 else {
                    throw HTTPError(status: 503, code: "not_enough_experts", message: "sample \(sample) got no answer, fewer than k_min = "
                        + "\(mixture.kMin), within forward_timeout \(mixture.forwardTimeout) s (\(failureSummary(results, groups)))")
                }
                routes.append([])
                continue
            }
            layer.metrics?.observe("answers_per_sample", 1)
            let coordinates = candidate.expert.uid.coordinates
            let weight = math.weight(probabilities[sample], coordinates: coordinates)
            MixtureMath.addScaled(answer.output.row(position), weight, into: &output.scalars, at: sample * width)
            routes.append([RoutingRecord.Route(uid: candidate.expert.uid, url: candidate.expert.url, weight: weight)])
            chosen.append(coordinates)
        }
        let updated = math.updatedUtilization(previous, chosen: chosen, alpha: parameters.utilizationAlpha)
        let loss = math.balancingLoss(probabilities, utilization: updated)
        return ForwardResult(output: output, balancingLoss: try! Tensor(shape: [1], scalars: [loss]),
                             utilization: try! Tensor(shape: [math.scoreCount], scalars: updated),
                             routing: RoutingRecord(samples: routes), seed: seed)
    }

    /// - Parameters:
    ///   - scores: the scores forward got (backward recomputes the softmaxes and the jitter from them and `seed`).
    ///   - utilization: the utilisation that forward returned (the balancing loss used it).
    ///   - gradLoss: the gradient of the training loss with respect to the balancing loss (its coefficient), or 0.
    /// - Returns: the gradient of x (the residual's `grad_output` plus the expert's) and of the scores
    ///   (through the weights and the balancing loss). A failed expert contributes zero gradient.
    /// - Throws: `HTTPError` 422 for shapes that do not fit, 503 when a sample got fewer than backward_k_min answers.
    public func backward(x: Tensor, scores: Tensor, gradOutput: Tensor, utilization: Tensor, gradLoss: Float, routing: RoutingRecord,
                         seed: UInt64?, _ parameters: SwitchParameters) async throws(HTTPError) -> (gradX: Tensor, gradScores: Tensor) {
        let mixture = parameters.mixture
        let math = SwitchMath(gridSize: mixture.gridSize)
        let batch = try layer.checkBatch(x, scores, mixture)
        guard gradOutput.shape == x.shape, routing.samples.count == batch else {
            throw .unprocessable("grad_output must be shaped like x \(x.shape) (the residual adds the output to x), and the routing "
                + "record must have \(batch) samples; got \(gradOutput.shape) and \(routing.samples.count)")
        }
        if let sample = routing.samples.firstIndex(where: { $0.count > 1 }) {
            throw .unprocessable("routing[\(sample)] names \(routing.samples[sample].count) experts; the Switch layer routes to one")
        }
        let u = try checkUtilization(utilization, math)
        guard gradLoss.isFinite else { throw .unprocessable("grad_balancing_loss must be finite") }
        guard parameters.jitter == 0 || seed != nil else {
            throw .unprocessable("with jitter > 0, backward needs forward's jitter_seed (metadata 'jitter_seed' or query 'seed')")
        }
        let (jittered, noise) = jitter(scores, parameters, seed: seed)
        let probabilities = (0..<batch).map { math.probabilities(jittered.row($0)) }

        var groups: [ExpertInfo: [(sample: Int, weight: Float)]] = [:]
        for (sample, routes) in routing.samples.enumerated() {
            for route in routes {
                let weight = math.weight(probabilities[sample], coordinates: route.uid.coordinates)
                groups[ExpertInfo(uid: route.uid, url: route.url), default: []].append((sample, weight))
            }
        }
        let experts = Array(groups.keys)
        let results = await layer.callBackward(x: x, gradOutput: gradOutput, groups: experts.map { ($0, groups[$0]!) }, mixture,
                                               deadline: Deadline(after: mixture.backwardTimeout))

        var gradX = gradOutput
        var weightGradients = [Float?](repeating: nil, count: batch)
        let width = x.rowSize
        for (expert, result) in zip(experts, results) {
            guard case .success(let tensors)? = result else { continue }
            for (position, row) in groups[expert]!.enumerated() {
                MixtureMath.addScaled(tensors[0].row(position), 1, into: &gradX.scalars, at: row.sample * width)
                weightGradients[row.sample] = MixtureMath.dot(tensors[1].row(position), gradOutput.row(row.sample))
            }
        }
        if mixture.backwardKMin > 0, let sample = weightGradients.firstIndex(where: { $0 == nil }) {
            throw HTTPError(status: 503, code: "not_enough_experts", message: "sample \(sample) got no backward answer, fewer than "
                + "backward_k_min = \(mixture.backwardKMin), within backward_timeout \(mixture.backwardTimeout) s "
                + "(\(failureSummary(results, experts.map { ($0, []) })))")
        }
        var gradScores = Tensor(zeros: scores.shape)
        for sample in 0..<batch {
            let coordinates = weightGradients[sample] == nil ? nil : routing.samples[sample].first?.uid.coordinates
            let gradient = math.scoreGradient(probabilities: probabilities[sample], coordinates: coordinates,
                                              weightGradient: weightGradients[sample] ?? 0, utilization: u, gradLoss: gradLoss, batch: batch)
            for (index, value) in gradient.enumerated() {
                let flat = sample * math.scoreCount + index
                gradScores.scalars[flat] = value * (noise?[flat] ?? 1)
            }
        }
        return (gradX, gradScores)
    }

    /// The scores times the seed's jitter noise (and the noise), or the scores as they are without jitter.
    private func jitter(_ scores: Tensor, _ parameters: SwitchParameters, seed: UInt64?) -> (Tensor, [Float]?) {
        guard parameters.jitter > 0, let seed else { return (scores, nil) }
        let noise = SwitchMath.jitterNoise(count: scores.count, jitter: parameters.jitter, seed: seed)
        var jittered = scores
        for index in noise.indices { jittered.scalars[index] *= noise[index] }
        return (jittered, noise)
    }

    private func checkUtilization(_ tensor: Tensor, _ math: SwitchMath) throws(HTTPError) -> [Float] {
        guard tensor.shape == [math.scoreCount], tensor.scalars.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw .unprocessable("utilization must be [\(math.scoreCount)] finite non-negative fractions per grid coordinate "
                + "(as the previous forward returned it), got shape \(tensor.shape)")
        }
        return tensor.scalars
    }
}
