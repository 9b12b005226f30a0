/// Eight floats at a time, for loops the compiler does not vectorize on its
/// own (an update through four arrays that may alias, as far as it knows).
enum Lanes {
    /// Calls `body(offset, count)` for consecutive groups of up to eight
    /// elements of `range`; only the last group can be shorter.
    @inline(__always)
    static func forEachGroup(_ range: Range<Int>, _ body: (Int, Int) -> Void) {
        var offset = range.lowerBound
        while offset < range.upperBound {
            body(offset, min(8, range.upperBound - offset))
            offset += 8
        }
    }

    /// `√x` per lane, for `x >= 0`, within 3e-7 of the correctly rounded root.
    ///
    /// `Float.squareRoot()` compiles to a `sqrtf` call on Linux (it must set
    /// `errno` for negative input), which runs lane by lane; this is an
    /// inverse square root from the classic bit-level estimate (within 3.5%)
    /// refined by three Newton steps (each squares the error: 2e-3, 5e-6,
    /// then float rounding), times `x`, and stays in vector registers. `√0 = 0`.
    @inline(__always)
    static func squareRoot(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let bits = unsafeBitCast(x, to: SIMD8<UInt32>.self)
        var inverse = unsafeBitCast(SIMD8<UInt32>(repeating: 0x5F37_59DF) &- (bits &>> 1), to: SIMD8<Float>.self)
        let half = 0.5 * x
        inverse *= 1.5 - half * inverse * inverse
        inverse *= 1.5 - half * inverse * inverse
        inverse *= 1.5 - half * inverse * inverse
        return x * inverse
    }

    /// `count` (at most 8) floats from `pointer + offset`, zero-padded.
    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>, _ offset: Int, _ count: Int) -> SIMD8<Float> {
        if count == 8 { return UnsafeRawPointer(pointer + offset).loadUnaligned(as: SIMD8<Float>.self) }
        var lanes = SIMD8<Float>()
        for lane in 0..<count { lanes[lane] = pointer[offset + lane] }
        return lanes
    }

    /// Stores the first `count` (at most 8) lanes at `pointer + offset`.
    @inline(__always)
    static func store(_ lanes: SIMD8<Float>, _ pointer: UnsafeMutablePointer<Float>, _ offset: Int, _ count: Int) {
        if count == 8 { return UnsafeMutableRawPointer(pointer + offset).storeBytes(of: lanes, as: SIMD8<Float>.self) }
        for lane in 0..<count { pointer[offset + lane] = lanes[lane] }
    }
}
