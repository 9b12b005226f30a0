import Foundation
import Testing
@testable import ExpertHost

@Suite struct AtomicFileTests {
    @Test func writeReplacesWholeAndLeavesNoTemporaryFile() throws {
        let folder = NSTemporaryDirectory() + "atomic-\(UUID().uuidString)/nested"
        try AtomicFile.createDirectory(folder)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/state.bin"
        #expect(try AtomicFile.read(path) == nil)
        try AtomicFile.write([1, 2, 3], to: path)
        try AtomicFile.write(Array(repeating: 9, count: 3 << 20), to: path)
        #expect(try AtomicFile.read(path) == Array(repeating: 9, count: 3 << 20))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["state.bin"])
    }
}
