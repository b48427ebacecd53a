import BLCore
import Foundation

/// Class names for a model's classifier rows.
public enum ClassLabels {
    /// Reads a labels file: one name per line (UTF-8; `\r\n` line ends accepted, spaces and tabs
    /// around a name dropped, trailing empty lines ignored), exactly `classes` of them.
    public static func read(_ url: URL, classes: Int) throws(BLConvertError) -> [String] {
        let path = url.path
        return try bridged { () throws -> [String] in
            let f = try MappedFile(path: path)
            guard let text = String(validating: Array(f.bytes), as: UTF8.self) else {
                throw BLError(.format, "labels file is not UTF-8 text", file: path)
            }
            // Split on the scalar "\n": as Characters, "\r\n" is one grapheme and would not split.
            var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                String(String.UnicodeScalarView(line)).trimmingWhitespace
            }
            while lines.last == "" { lines.removeLast() }
            guard lines.count == classes else {
                throw BLError(.mismatch, "labels file has \(lines.count) lines but the model has \(classes) classes", file: path)
            }
            return lines
        }
    }
}
