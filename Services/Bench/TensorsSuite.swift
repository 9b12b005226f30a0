import Foundation
import Shared

/// The tensor suite: the machine's limits (sgemm, memcpy) and, as ratios to
/// them, what the wire format and the compression codecs achieve.
func runTensorsSuite() throws {
    print("hivemind-bench tensors  (\(ProcessInfo.processInfo.activeProcessorCount) cores, OpenBLAS \(BLAS.threadCount) threads)")
    print()
    let gflops = measureSgemm(size: 1024)
    print("sgemm 1024x1024x1024        \(format(gflops, 1)) GFLOP/s (best of 5)")
    let memcpyRate = measureMemcpy(bytes: 64 << 20)
    print("memcpy 64 MiB               \(format(memcpyRate / 1e9)) GB/s (best of 10)")
    print()
    try measureSafetensors(bytes: 64 << 20, memcpyRate: memcpyRate)
    print()
    try measureCodecs(count: 10_000_000)
}

private func measureSgemm(size n: Int) -> Double {
    var rng = SplitMix64(seed: 1)
    let a = Tensor.randomNormal(shape: [n, n], using: &rng), b = Tensor.randomNormal(shape: [n, n], using: &rng)
    var c = Tensor(zeros: [n, n])
    try! Tensor.matmul(a, b, into: &c)  // warm up threads and caches
    let seconds = bestTime(5) { try! Tensor.matmul(a, b, into: &c) }
    return 2 * Double(n * n * n) / seconds / 1e9
}

private func measureMemcpy(bytes: Int) -> Double {
    let source = [UInt8](repeating: 1, count: bytes)
    var target = [UInt8](repeating: 0, count: bytes)
    let seconds = source.withUnsafeBytes { source in
        target.withUnsafeMutableBytes { target in
            bestTime(10) { memcpy(target.baseAddress!, source.baseAddress!, bytes) }
        }
    }
    return Double(bytes) / seconds
}

private func measureSafetensors(bytes: Int, memcpyRate: Double) throws {
    var rng = SplitMix64(seed: 2)
    let tensor = Tensor.randomNormal(shape: [bytes / 4 / 1024, 1024], using: &rng)
    let wire = try WireTensor(tensor)
    let bundle = TensorBundle([("x", tensor)])
    var encoded = try Safetensors.encode([("x", wire)])
    // One untimed round first: the first fresh huge pages of a process can
    // cost a memory compaction in the kernel, which is not the steady state.
    consume(try Safetensors.decode(encoded))
    consume(try TensorBundle.decode(encoded))
    consume(try bundle.encode())
    let rows: [(String, Double)] = try [
        ("encode WireTensor -> bytes", bestTime(5) { encoded = try Safetensors.encode([("x", wire)]) }),
        ("decode bytes -> WireTensor", bestTime(5) { consume(try Safetensors.decode(encoded)) }),
        ("decode bytes -> Tensor (bundle)", bestTime(5) { consume(try TensorBundle.decode(encoded)) }),
        ("encode Tensor -> bytes (bundle)", bestTime(5) { consume(try bundle.encode()) }),
        ("WireTensor -> Tensor (F32)", bestTime(5) { consume(try Tensor(wire)) }),
    ]
    print("safetensors, 64 MiB float32 payload (best of 5; ratio to memcpy)")
    for (label, seconds) in rows {
        let rate = Double(bytes) / seconds
        print("  \(column(label, 34)) \(column(format(rate / 1e9) + " GB/s", 12)) \(format(rate / memcpyRate)) x memcpy")
    }
}

private func measureCodecs(count: Int) throws {
    var rng = SplitMix64(seed: 3)
    let tensor = Tensor.randomNormal(shape: [count], using: &rng)
    let inputBytes = Double(count * 4)
    print("compression, \(count / 1_000_000)M-element standard-normal tensor (best of 5; GB/s of float32 input)")
    print("  \(column("codec", 16)) \(column("compress", 10)) \(column("decompress", 11)) \(column("both", 8)) \(column("target", 8)) \(column("MSE", 10)) size")
    let targets: [CompressionCodec: Double] = [.float16: 3, .bfloat16: 3, .meanStd16: 2, .uniform8: 1.5, .blockwise8: 0.6, .quantile8: 0.3]
    for codec in CompressionCodec.allCases {
        var compressed = try codec.compress(tensor)
        let compressTime = try bestTime(5) { compressed = try codec.compress(tensor) }
        var restored = try compressed.decompressed()
        let decompressTime = try bestTime(5) { restored = try compressed.decompressed() }
        var squares: Double = 0
        for i in 0..<count {
            let d = Double(tensor.scalars[i] - restored.scalars[i])
            squares += d * d
        }
        let both = inputBytes / (compressTime + decompressTime) / 1e9
        let target = targets[codec].map { ">= \(format($0, 1))" + (both >= $0 ? " ok" : " MISS") } ?? ""
        print("  \(column(codec.rawValue, 16)) \(column(format(inputBytes / compressTime / 1e9), 10)) "
            + "\(column(format(inputBytes / decompressTime / 1e9), 11)) \(column(format(both), 8)) \(column(target, 8)) "
            + "\(column(String(format: "%.2e", squares / Double(count)), 10)) \(format(Double(compressed.byteCount) / inputBytes, 3))")
    }
}
