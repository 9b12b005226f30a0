import COpenBLAS
import Foundation
import Shared

/// The neural suite: an `ffn` expert (hidden 1024, batch 256), forward and
/// forward + backward, against the sgemm roofline of its own matrix
/// products measured at the same sizes in the same run.
func runNeuralSuite() throws {
    let hidden = 1024, batch = 256, inner = 4 * hidden
    print("hivemind-bench neural  (\(ProcessInfo.processInfo.activeProcessorCount) cores, OpenBLAS \(openblas_get_num_threads()) threads)")
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

    // Rounds interleave the products and the expert, so both see the same
    // machine (a shared host's speed drifts); each keeps its best time.
    var productTimes = [Double](repeating: .infinity, count: products.count)
    var forwardTime = Double.infinity, stepTime = Double.infinity
    let rounds = 12
    for round in 0...rounds {
        let times = try products.indices.map { index in try products[index].time(&operands[index]) }
        let forwardSeconds = try bestTime(1) { consume(try expert.forward(inputs: [x])) }
        let stepSeconds = try bestTime(1) {
            consume(try expert.forward(inputs: [x]))
            consume(try expert.backward(inputs: [x], gradOutputs: [gradOutput]))
        }
        // Round 0 warms up threads, caches and buffers; it is not timed.
        guard round > 0 else { continue }
        productTimes = zip(times, productTimes).map(min)
        forwardTime = min(forwardTime, forwardSeconds)
        stepTime = min(stepTime, stepSeconds)
    }
    print("sgemm at the expert's sizes (best of \(rounds), interleaved with the expert's runs)")
    var seconds: [Product: Double] = [:]
    for (product, time) in zip(products, productTimes) {
        seconds[product] = time
        print("  \(column(product.label, 30)) \(format(product.flops / time / 1e9, 1)) GFLOP/s")
    }
    let forwardRoofline = forward.reduce(0) { $0 + seconds[$1]! }
    // Backward recomputes the forward pass, so a training step is two forwards and a backward.
    let stepRoofline = 2 * forwardRoofline + backward.reduce(0) { $0 + seconds[$1]! }
    let forwardFlops = forward.reduce(0) { $0 + $1.flops }
    let stepFlops = 2 * forwardFlops + backward.reduce(0) { $0 + $1.flops }
    print()

    print("ffn expert, hidden \(hidden), batch \(batch) (best of \(rounds))")
    print("  \(column("", 20)) \(column("samples/s", 11)) \(column("MFLOP/sample", 13)) \(column("GFLOP/s", 9)) roofline")
    for (label, time, flops, roofline, target) in [("forward", forwardTime, forwardFlops, forwardRoofline, nil),
                                                   ("forward + backward", stepTime, stepFlops, stepRoofline, 0.8)] {
        let fraction = roofline / time
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
private func measureOptimizerSteps(_ expert: any Expert, gradients: [String: Tensor]) throws {
    let count = expert.parameterCount
    let bandwidth = memcpyBandwidth(bytes: 64 << 20)
    print("optimizer step on the ffn expert, \(count / 1_000_000)M parameters (best of 5; memcpy \(format(bandwidth / 1e9)) GB/s)")
    print("  \(column("", 24)) \(column("ms", 8)) \(column("GB/s", 8)) of memcpy")
    // Bytes moved per parameter: read p, g and each buffer; write p and each buffer.
    for (label, rule, buffers) in [("sgd momentum", UpdateRule.sgd(momentum: 0.9), 1), ("adam", .adam(), 2), ("adamw + clipping", .adamW(), 2)] {
        var target = expert
        var optimizer = try Optimizer(rule: rule, learningRate: 1e-6, maxGradientNorm: label.contains("clipping") ? 1 : nil)
        try optimizer.step(&target, gradients: gradients)
        let seconds = try bestTime(5) { try optimizer.step(&target, gradients: gradients) }
        let rate = Double(count * 4 * (3 + 2 * buffers)) / seconds
        print("  \(column(label, 24)) \(column(format(seconds * 1e3), 8)) \(column(format(rate / 1e9), 8)) \(format(rate / bandwidth))")
    }
}

/// memcpy's rate in bytes per second (counting bytes read plus bytes written, like the optimizer's traffic).
private func memcpyBandwidth(bytes: Int) -> Double {
    let source = [UInt8](repeating: 1, count: bytes)
    var target = [UInt8](repeating: 0, count: bytes)
    let seconds = source.withUnsafeBytes { source in
        target.withUnsafeMutableBytes { target in bestTime(10) { memcpy(target.baseAddress!, source.baseAddress!, bytes) } }
    }
    return 2 * Double(bytes) / seconds
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
