/// The expert calls of one forward pass: one per chosen expert with the samples
/// that chose it, and where each sample's choices will find their answers, so
/// mixing reads the answers by position instead of looking experts up per sample.
struct CallPlan {
    /// Per call, its expert and its samples (the rows of the call's batch), in a fixed order.
    private(set) var groups: [(ExpertInfo, [Int])] = []
    /// Per sample, per chosen expert (in the order given): the call and the row of its answer.
    private(set) var slots: [[(call: Int, row: Int)]] = []

    init(_ choices: [[ExpertInfo]]) {
        var calls: [ExpertInfo: Int] = [:]
        slots.reserveCapacity(choices.count)
        for (sample, experts) in choices.enumerated() {
            slots.append(experts.map { expert in
                let call = calls[expert] ?? {
                    groups.append((expert, []))
                    calls[expert] = groups.count - 1
                    return groups.count - 1
                }()
                groups[call].1.append(sample)
                return (call, groups[call].1.count - 1)
            })
        }
    }
}
