import BLCore
import Foundation

/// Class names for a model's classifier rows.
public enum ClassLabels {
    /// Reads a labels file, exactly `classes` names:
    /// - text: one name per line, as the reference's `load_categories` reads it (UTF-8; `\r\n` line
    ///   ends accepted, spaces and tabs around a name dropped, blank lines skipped);
    /// - JSON: an object from name to class id (Something-Something v2's `labels.json`, ids as
    ///   numbers or decimal strings), each id from 0 to `classes` - 1 exactly once.
    public static func read(_ url: URL, classes: Int) throws(BLConvertError) -> [String] {
        let path = url.path
        return try bridged { () throws -> [String] in
            let f = try MappedFile(path: path)
            guard f.count <= 64 << 20 else { throw BLError(.format, "labels file is larger than 64 MiB", file: path) }
            guard let text = String(validating: Array(f.bytes), as: UTF8.self) else {
                throw BLError(.format, "labels file is not UTF-8 text", file: path)
            }
            if text.trimmingWhitespace.hasPrefix("{") { return try fromJSON(text, classes: classes, path: path) }
            // Split on the scalar "\n": as Characters, "\r\n" is one grapheme and would not split.
            let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                String(String.UnicodeScalarView(line)).trimmingWhitespace
            }.filter { !$0.isEmpty }
            guard lines.count == classes else {
                throw BLError(.mismatch, "labels file has \(lines.count) lines with a name (blank lines are skipped) but the model has \(classes) classes", file: path)
            }
            return lines
        }
    }

    /// `{"name": id, ...}` to names by id.
    static func fromJSON(_ text: String, classes: Int, path: String) throws -> [String] {
        let json: JSON
        do { json = try JSONParser.parse(text) } catch let e as BLError { throw e.inFile(path) }
        guard case .object(let items) = json else {
            throw BLError(.format, "labels JSON must be an object from class name to id", file: path)
        }
        guard items.count == classes else {
            throw BLError(.mismatch, "labels file has \(items.count) names but the model has \(classes) classes", file: path)
        }
        var names = [String?](repeating: nil, count: classes)
        for (name, value) in items {
            let id: Int?
            switch value {
            case .int(let i): id = Int(exactly: i)
            case .string(let s): id = Int(s.trimmingWhitespace)
            default: id = nil
            }
            guard let id, id >= 0, id < classes else {
                throw BLError(.format, "label '\(name)' has id \(value.serialized()), expected 0...\(classes - 1)", file: path)
            }
            guard names[id] == nil else {
                throw BLError(.format, "class id \(id) is given to both '\(names[id] ?? "")' and '\(name)'", file: path)
            }
            names[id] = name
        }
        return names.map { $0 ?? "" }
    }
}
