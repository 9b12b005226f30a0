/// Whether float32 values hold no NaN or infinity, checked the way the CPU
/// likes: a loop without branches over the bit patterns, which the compiler
/// vectorizes (`allSatisfy { $0.isFinite }` stops to branch at every element,
/// and every part a reducer receives and every average a sender gets back is checked).
enum Finite {
    static func all(_ values: UnsafeBufferPointer<Float>) -> Bool {
        values.withMemoryRebound(to: UInt32.self) { bits in
            // A NaN or an infinity has every exponent bit set; adding one unit
            // of exponent then carries into the top bit, which no finite value reaches.
            var carries: UInt32 = 0
            for pattern in bits { carries |= (pattern & 0x7F80_0000) &+ 0x0080_0000 }
            return carries & 0x8000_0000 == 0
        }
    }

    static func all(_ values: [Float]) -> Bool {
        values.withUnsafeBufferPointer { all($0) }
    }
}
