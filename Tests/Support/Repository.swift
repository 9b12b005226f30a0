import Foundation

/// Where the repository's files are, for tests that read them (the data set,
/// the OpenAPI documents, the deploy files, the build folder).
public enum Repository {
    /// The repository's root folder.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized

    /// The path of a file or folder given relative to the root, e.g. `data/digits.csv.gz`.
    public static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
}
