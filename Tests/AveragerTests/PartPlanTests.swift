import Testing
@testable import Averager

@Suite struct PartPlanTests {
    @Test func partsCoverTheVectorWithoutSpanningTensors() {
        let counts = [1000, 3, 0, 517, 2048]
        let plan = PartPlan(tensorCounts: counts, shares: LoadBalancing.shares(total: counts.reduce(0, +), bandwidths: [nil, nil, 0, nil])!, partSize: 256)
        var position = 0
        for part in plan.parts {
            #expect(part.range.lowerBound == position)
            #expect(part.count > 0 && part.count <= 256)
            position = part.range.upperBound
        }
        #expect(position == counts.reduce(0, +))
        var boundaries: Set<Int> = [0]
        var sum = 0
        for count in counts { sum += count; boundaries.insert(sum) }
        for part in plan.parts {
            #expect(!boundaries.contains(where: { $0 > part.range.lowerBound && $0 < part.range.upperBound }), "\(part.range) spans a tensor boundary")
        }
        #expect(plan.partsByReducer[2].isEmpty, "a member with share 0 reduces nothing")
        #expect(plan.partsByReducer.flatMap { $0 }.sorted() == Array(plan.parts.indices))
    }

    @Test func eachMemberGetsAboutItsShare() {
        let total = 1 << 20
        let shares = LoadBalancing.shares(total: total, bandwidths: [1, 2, 1, nil])!
        let plan = PartPlan(tensorCounts: [total], shares: shares, partSize: 4096)
        for (member, parts) in plan.partsByReducer.enumerated() {
            let elements = parts.reduce(0) { $0 + plan.parts[$1].count }
            #expect(abs(elements - shares[member]) <= 4096, "member \(member): \(elements) vs \(shares[member])")
        }
    }

    @Test func aStraddlingPartGoesToTheLargestOverlap() {
        // Pivots at 30 and 100; parts of 40: [0,40) overlaps member 0 by 30 and member 1 by 10.
        let plan = PartPlan(tensorCounts: [100], shares: [30, 70], partSize: 40)
        #expect(plan.parts.map(\.reducer) == [0, 1, 1])
        // Pivot at 10: [0,40) overlaps member 1 by 30.
        #expect(PartPlan(tensorCounts: [100], shares: [10, 90], partSize: 40).parts.map(\.reducer) == [1, 1, 1])
    }
}
