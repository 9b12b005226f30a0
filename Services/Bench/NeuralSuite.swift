import Foundation
import Shared

/// The neural suite: an `ffn` expert (hidden 1024, batch 256), forward and
/// forward + backward, against the sgemm roofline of its own matrix
/// products measured at the same sizes in the same run.
func runNeuralSuite() throws {
    let hidden = 1024, batch = 256, inner = 4 * hidden
    print("hivemind-bench neural  (\(ProcessInfo.processInfo.activeProcessorCount) cores, OpenBLAS \(BLAS.threadCount) threads)")
    print()

    // The expert's products: forward x·W1ᵀ and a·W2ᵀ; backward per layer dy·W (input) and dyᵀ·x (weight).
    let forward = [Product(m: batch, n: inner, k: hidden, transposeB: true), Product(m: batch, n: hidden, k: inner, transposeB: true)]
    let backward = [Product(m: batch, n: inner, k: hidden), Product(m: hidden, n: inner, k: batch, transposeA: true),
                    Product(m: batch, n: hidden, k: inner), Product(m: inner, n: hidden, k: batch, transposeA: true)]
    let products = Set(forward + backward).sorted { $0.label < $1.label }
    var operands = products.map { $0.operands() }
    let expert = try ExpertRegistry.standard.make("ffn", hiddenSize: hidden, seed: 1)
    var generator = SplitMix64(seed: 2)
    let x = Tensor.randomNormal(shape: [batch, hidden], using: &generator)
    let gradOutput = Tensor.randomNormal(shape: [batch, hidden], using: &generator)

    let forwardFlops = forward.reduce(0) { $0 + $1.flops }
    // Backward recomputes the forward pass, so a training step is two forwards and a backward.
    let stepFlops = 2 * forwardFlops + backward.reduce(0) { $0 + $1.flops }

    // Rounds interleave the products and the expert: a shared host's speed
    // drifts, and within one round both see the same machine. The fraction
    // of the roofline is the median over rounds of (the round's sgemm time
    // for the expert's products) / (the round's expert time); rates are best-of.
    let rounds = 20
    var productTimes = [Double](repeating: .infinity, count: products.count)
    var forwardTime = Double.infinity, stepTime = Double.infinity
    var forwardFractions: [Double] = [], stepFractions: [Double] = []
    for round in 0...rounds {
        let times = try products.indices.map { index in try products[index].time(&operands[index]) }
        let forwardSeconds = try bestTime(1) { consume(try expert.forward(inputs: [x])) }
        let stepSeconds = try bestTime(1) {
            consume(try expert.forward(inputs: [x]))
            consume(try expert.backward(inputs: [x], gradOutputs: [gradOutput]))
        }
        // Round 0 warms up threads, caches and buffers; it is not timed.
        guard round > 0 else { continue }
        let seconds = Dictionary(uniqueKeysWithValues: zip(products, times))
        let forwardRoofline = forward.reduce(0) { $0 + seconds[$1]! }
        forwardFractions.append(forwardRoofline / forwardSeconds)
        stepFractions.append((2 * forwardRoofline + backward.reduce(0) { $0 + seconds[$1]! }) / stepSeconds)
        productTimes = zip(times, productTimes).map(min)
        forwardTime = min(forwardTime, forwardSeconds)
        stepTime = min(stepTime, stepSeconds)
    }
    print("sgemm at the expert's sizes (best of \(rounds), interleaved with the expert's runs)")
    for (product, time) in zip(products, productTimes) {
        print("  \(column(product.label, 30)) \(format(product.flops / time / 1e9, 1)) GFLOP/s")
    }
    print()

    print("ffn expert, hidden \(hidden), batch \(batch) (best of \(rounds); roofline: median over rounds)")
    print("  \(column("", 20)) \(column("samples/s", 11)) \(column("MFLOP/sample", 13)) \(column("GFLOP/s", 9)) roofline")
    for (label, time, flops, fractions, target) in [("forward", forwardTime, forwardFlops, forwardFractions, nil),
                                                    ("forward + backward", stepTime, stepFlops, stepFractions, 0.8)] {
        let fraction = fractions.sorted()[fractions.count / 2]
        let verdict = target.map { " (target >= \(format($0, 1)): " + (fraction >= $0 ? "ok)" : "MISS)") } ?? ""
        print("  \(column(label, 20)) \(column(format(Double(batch) / time, 0), 11)) \(column(format(flops / Double(batch) / 1e6, 1), 13)) "
            + "\(column(format(flops / time / 1e9, 1), 9)) \(format(fraction)) of sgemm\(verdict)")
    }
    print()
    try measureOptimizerSteps(expert, gradients: expert.backward(inputs: [x], gradOutputs: [gradOutput]).parameterGradients)
}

/// The optimizer step an expert host runs after every backward batch,
/// against memory bandwidth: an update reads and writes each parameter and
/// its buffers and reads the gradient, so it is bound by memory traffic.
/// Rounds interleave a bandwidth measurement and the steps, as for sgemm above.
private func measureOptimizerSteps(_ expert: any Expert, gradients: [String: Tensor]) throws {
    let count = expert.parameterCount
    let rules: [(label: String, rule: UpdateRule, buffers: Int, clip: Float?)] = [
        ("sgd momentum", .sgd(momentum: 0.9), 1, nil), ("adam", .adam(), 2, nil), ("adamw + clipping", .adamW(), 2, 1),
    ]
    var optimizers = try rules.map { try Optimizer(rule: $0.rule, learningRate: 1e-6, maxGradientNorm: $0.clip) }
    var target = expert
    let triad = StreamTriad()
    var triadSeconds = Double.infinity
    var stepSeconds = [Double](repeating: .infinity, count: rules.count)
    for round in 0...5 {
        let triadTime = triad.time()
        let times = try optimizers.indices.map { index in try bestTime(1) { try optimizers[index].step(&target, gradients: gradients) } }
        // Round 0 creates the optimizers' buffers; it is not timed.
        guard round > 0 else { continue }
        triadSeconds = min(triadSeconds, triadTime)
        stepSeconds = zip(stepSeconds, times).map(min)
    }
    let bandwidth = Double(triad.bytes) / triadSeconds
    print("optimizer step on the ffn expert, \(count / 1_000_000)M parameters "
        + "(best of 5; STREAM triad on all cores \(format(bandwidth / 1e9)) GB/s read + written)")
    print("  \(column("", 24)) \(column("ms", 8)) \(column("GB/s", 8)) of triad")
    for (rule, seconds) in zip(rules, stepSeconds) {
        // Bytes moved per parameter: read p, g and each buffer; write p and each buffer.
        let rate = Double(count * 4 * (3 + 2 * rule.buffers)) / seconds
        print("  \(column(rule.label, 24)) \(column(format(seconds * 1e3), 8)) \(column(format(rate / 1e9), 8)) \(format(rate / bandwidth))")
    }
}

/// STREAM's triad, `a = b + s · c` over 64 MiB arrays on all cores: the
/// memory-bandwidth limit for loops like the optimizer's (glibc's memcpy is
/// slower than that on this machine, so it makes a poor yardstick here).
private final class StreamTriad {
    let count = 16 << 20
    private var a: [Float], b: [Float], c: [Float]

    init() {
        a = [Float](repeating: 0, count: count)
        b = [Float](repeating: 1, count: count)
        c = [Float](repeating: 2, count: count)
    }

    /// Bytes moved by one pass: b and c read, a written, and a read first as
    /// well (a cache line is fetched before it is written). The optimizer's
    /// writes go to arrays it reads anyway, so its count has no such extra.
    var bytes: Int { 16 * count }

    /// The seconds one pass takes.
    func time() -> Double {
        let (count, cores) = (self.count, ProcessInfo.processInfo.activeProcessorCount)
        return b.withUnsafeBufferPointer { b in
            c.withUnsafeBufferPointer { c in
                a.withUnsafeMutableBufferPointer { a in
                    nonisolated(unsafe) let (x, y, z) = (b.baseAddress!, c.baseAddress!, a.baseAddress!)
                    return bestTime(1) {
                        DispatchQueue.concurrentPerform(iterations: cores) { core in
                            for i in (count / cores * core)..<(core == cores - 1 ? count : count / cores * (core + 1)) {
                                z[i] = x[i] + 3 * y[i]
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One `op(A)[m, k] · op(B)[k, n]` product the expert computes.
private struct Product: Hashable {
    let m: Int, n: Int, k: Int
    var transposeA = false, transposeB = false

    var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    var label: String { "\(m)x\(n)x\(k)" + (transposeA ? " Aᵀ" : "") + (transposeB ? " Bᵀ" : "") }

    /// Random operands and an output buffer for this product.
    func operands() -> (a: Tensor, b: Tensor, c: Tensor) {
        var generator = SplitMix64(seed: 3)
        return (Tensor.randomNormal(shape: transposeA ? [k, m] : [m, k], using: &generator),
                Tensor.randomNormal(shape: transposeB ? [n, k] : [k, n], using: &generator), Tensor(zeros: [m, n]))
    }

    /// The seconds one product takes into the operands' output buffer.
    func time(_ operands: inout (a: Tensor, b: Tensor, c: Tensor)) throws -> Double {
        try bestTime(1) { try Tensor.matmul(operands.a, operands.b, transposeA: transposeA, transposeB: transposeB, into: &operands.c) }
    }
}
