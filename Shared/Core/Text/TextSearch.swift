/// Searching text for text, without the `_StringProcessing` module: SharedCore
/// does not import it (Package.swift), because its searchers and the regex
/// parser they bring were a megabyte of the DHT node's code, and an idle node
/// touched pages of it to split a flag.
///
/// Matches are by UTF-8 bytes, exactly (no Unicode normalisation), which is what
/// the protocol text searched here (URLs, PEM armour, libcurl's messages) needs;
/// the names say so, and keep them apart from `_StringProcessing`'s where both are seen.
extension StringProtocol {
    /// The range of the first occurrence of `needle`; an empty needle is found at the start.
    func firstUTF8Range(of needle: some StringProtocol) -> Range<Index>? {
        let pattern = Array(needle.utf8)
        guard let first = pattern.first else { return startIndex..<startIndex }
        var from = utf8.startIndex
        while let found = utf8[from...].firstIndex(of: first) {
            if utf8[found...].starts(with: pattern) { return found..<utf8.index(found, offsetBy: pattern.count) }
            from = utf8.index(after: found)
        }
        return nil
    }

    /// Whether `needle` occurs in this text.
    func containsUTF8(_ needle: some StringProtocol) -> Bool { firstUTF8Range(of: needle) != nil }
}

extension String {
    /// Every occurrence of `target` replaced by `replacement`.
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, containsUTF8(target) else { return self }
        var result = "", rest = self[...]
        while let found = rest.firstUTF8Range(of: target) {
            result += rest[..<found.lowerBound] + replacement
            rest = rest[found.upperBound...]
        }
        return result + rest
    }
}
