/// Reductions over one contiguous row, eight lanes at a time (a plain
/// float loop would not vectorize: the compiler may not reorder its sums).
/// The tensor module's `rowSum` is the plain sum.
enum RowKernels {
    /// `Σ a[i] · b[i]` over `count` elements.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        var index = 0
        var lanes = SIMD8<Float>()
        let rawA = UnsafeRawPointer(a), rawB = UnsafeRawPointer(b)
        while index + 8 <= count {
            lanes += rawA.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
                * rawB.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<Float>.self)
            index += 8
        }
        var total = lanes.sum()
        while index < count {
            total += a[index] * b[index]
            index += 1
        }
        return total
    }
}
