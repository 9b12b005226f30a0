import Foundation

extension LabeledDataset {
    /// The UCI handwritten digits (`data/digits.csv.gz` in this repository):
    /// 1797 samples of 64 pixels, scaled from 0...16 to 0...1, labels 0...9.
    ///
    /// The file is gzipped CSV; `gzip -dc` unpacks it (Foundation has no
    /// gzip reader on Linux, and the file is small).
    /// - Throws: `NeuralError` (`.invalidData`) if the file cannot be read or is malformed.
    public static func digits(contentsOf url: URL) throws(NeuralError) -> LabeledDataset {
        let dataset = try LabeledDataset(csv: try gunzip(url), featureScale: 1 / 16)
        guard dataset.features.shape[1] == 64, dataset.labels.allSatisfy({ $0 < 10 }) else {
            throw NeuralError(.invalidData, "\(url.path): expected 64 pixel values and a digit label per line")
        }
        return dataset
    }

    /// The text of a gzipped file.
    static func gunzip(_ url: URL) throws(NeuralError) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip", "-dc", url.path]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch { throw NeuralError(.invalidData, "cannot run gzip: \(error)") }
        // Read before waiting, so a full pipe cannot block gzip.
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NeuralError(.invalidData, "cannot unpack \(url.path): \(String(decoding: message, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
