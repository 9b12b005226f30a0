import Foundation

/// How the learning rate changes with the step count: a multiplier on the
/// optimizer's base learning rate, as a PyTorch `LambdaLR` applies one.
///
/// The multiplier for step `t` (the number of steps already taken) scales
/// the update of step `t + 1`, so with warmup the very first update has
/// learning rate 0, exactly as in transformers' schedules.
public enum LearningRateSchedule: Sendable, Equatable {
    /// Always 1.
    case constant
    /// Rises linearly from 0 to 1 over `warmupSteps`, then falls linearly
    /// to 0 at `totalSteps` and stays there (transformers'
    /// `get_linear_schedule_with_warmup`, the reference's default for experts).
    case linear(warmupSteps: Int, totalSteps: Int)
    /// Rises linearly over `warmupSteps`, then follows a cosine from 1 to 0
    /// at `totalSteps` (transformers' `get_cosine_schedule_with_warmup` with half a cycle).
    case cosine(warmupSteps: Int, totalSteps: Int)

    /// The multiplier after `step` completed steps.
    public func multiplier(afterSteps step: Int) -> Double {
        switch self {
        case .constant:
            return 1
        case .linear(let warmup, let total):
            if step < warmup { return Double(step) / Double(max(1, warmup)) }
            return max(0, Double(total - step) / Double(max(1, total - warmup)))
        case .cosine(let warmup, let total):
            if step < warmup { return Double(step) / Double(max(1, warmup)) }
            let progress = Double(step - warmup) / Double(max(1, total - warmup))
            return max(0, 0.5 * (1 + cos(Double.pi * progress)))
        }
    }

    /// Checks that the step counts make sense.
    func validate() throws(NeuralError) {
        switch self {
        case .constant:
            return
        case .linear(let warmup, let total), .cosine(let warmup, let total):
            guard warmup >= 0, total > 0, warmup <= total else {
                throw .configuration("LearningRateSchedule", "expected 0 <= warmupSteps <= totalSteps and totalSteps > 0, "
                    + "got warmupSteps \(warmup), totalSteps \(total)")
            }
        }
    }
}
