/// The per-head products of attention, on the packed `[batch·sequence, 3·embed]`
/// projection: head `h` of the queries is the column block starting at
/// `h·headSize`, of the keys at `embed + h·headSize`, of the values at
/// `2·embed + h·headSize`, all with leading dimension `3·embed`, so no head is copied out.
struct AttentionHeads {
    let batch: Int, sequence: Int, embed: Int, heads: Int
    var headSize: Int { embed / heads }
    var packed: Int { 3 * embed }
    var scale: Float { 1 / Float(headSize).squareRoot() }

    /// Calls `body(b, h, rowOffset, matrixOffset)` for every batch entry and head:
    /// the first row of entry `b` in the packed projection, and the offset of
    /// its `[sequence, sequence]` matrix for head `h`.
    func forEachHead(_ body: (Int, Int, Int, Int) -> Void) {
        for b in 0..<batch {
            for h in 0..<heads { body(b, h, b * sequence, (b * heads + h) * sequence * sequence) }
        }
    }

    /// `scores = Q·Kᵀ / √headSize` per head.
    func scores(_ qkv: UnsafePointer<Float>, into p: UnsafeMutablePointer<Float>) {
        forEachHead { _, h, row, matrix in
            let q = qkv + row * packed + h * headSize, k = q + embed
            BLAS.gemm(transposeB: true, m: sequence, n: sequence, k: headSize, alpha: scale,
                      a: q, lda: packed, b: k, ldb: packed, c: p + matrix, ldc: sequence)
        }
    }

    /// Softmax over each row's keys, with padding keys at zero weight.
    func softmax(_ p: UnsafeMutablePointer<Float>, _ keyPaddingMask: Tensor?) {
        let padding = keyPaddingMask?.scalars
        forEachHead { b, _, _, matrix in
            for query in 0..<sequence {
                let row = p + matrix + query * sequence
                var top = -Float.infinity
                for key in 0..<sequence where padding?[b * sequence + key] ?? 0 == 0 { top = max(top, row[key]) }
                var total: Float = 0
                for key in 0..<sequence {
                    let kept = padding?[b * sequence + key] ?? 0 == 0
                    row[key] = kept ? Elementwise.exp(row[key] - top) : 0
                    total += row[key]
                }
                let inverse: Float = total > 0 ? 1 / total : 0
                for key in 0..<sequence { row[key] *= inverse }
            }
        }
    }

    /// `context_h = weights_h · V_h`, written into head `h`'s columns of `[batch·sequence, embed]`.
    func context(_ weights: UnsafePointer<Float>, _ qkv: UnsafePointer<Float>, into context: UnsafeMutablePointer<Float>) {
        forEachHead { _, h, row, matrix in
            let v = qkv + row * packed + 2 * embed + h * headSize
            BLAS.gemm(m: sequence, n: headSize, k: sequence, a: weights + matrix, lda: sequence,
                      b: v, ldb: packed, c: context + row * embed + h * headSize, ldc: embed)
        }
    }

    /// The gradient of the packed projection from the context gradient, per head:
    /// `dV = Wᵀ·dC`, `dW = dC·Vᵀ`, `dP = dW · mask`, `dS = softmax'(dP)`,
    /// `dQ = dS·K / √d`, `dK = dSᵀ·Q / √d` (W = P · mask is what multiplied V).
    func backward(_ qkv: UnsafePointer<Float>, _ p: UnsafePointer<Float>, _ mask: UnsafePointer<Float>?,
                  _ dContext: UnsafePointer<Float>, into dqkv: UnsafeMutablePointer<Float>) {
        let area = sequence * sequence
        var weights = [Float](repeating: 0, count: mask == nil ? 0 : area)
        var gradScores = [Float](repeating: 0, count: area)
        weights.withUnsafeMutableBufferPointer { weights in
            gradScores.withUnsafeMutableBufferPointer { gradScores in
                let dS = gradScores.baseAddress!
                forEachHead { _, h, row, matrix in
                    let q = qkv + row * packed + h * headSize, k = q + embed, v = k + embed
                    let dq = dqkv + row * packed + h * headSize, dk = dq + embed, dv = dk + embed
                    let dc = dContext + row * embed + h * headSize
                    let probabilities = p + matrix
                    var applied = UnsafePointer(probabilities)
                    if let mask, let w = weights.baseAddress {
                        for i in 0..<area { w[i] = probabilities[i] * mask[matrix + i] }
                        applied = UnsafePointer(w)
                    }
                    BLAS.gemm(transposeA: true, m: sequence, n: headSize, k: sequence, a: applied, lda: sequence,
                              b: dc, ldb: embed, c: dv, ldc: packed)
                    BLAS.gemm(transposeB: true, m: sequence, n: sequence, k: headSize, a: dc, lda: embed,
                              b: v, ldb: packed, c: dS, ldc: sequence)
                    if let mask {
                        for i in 0..<area { dS[i] *= mask[matrix + i] }
                    }
                    for query in 0..<sequence {
                        let offset = query * sequence
                        Softmax.backwardRow(probabilities + offset, dS + offset, dS + offset, sequence)
                    }
                    BLAS.gemm(m: sequence, n: headSize, k: sequence, alpha: scale, a: dS, lda: sequence,
                              b: k, ldb: packed, c: dq, ldc: packed)
                    BLAS.gemm(transposeA: true, m: sequence, n: headSize, k: sequence, alpha: scale, a: dS, lda: sequence,
                              b: q, ldb: packed, c: dk, ldc: packed)
                }
            }
        }
    }
}
