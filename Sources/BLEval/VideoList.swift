import BLCore
import BLMedia
import Foundation

/// One video of an evaluation list: a line `path start_frame end_frame [label ...]`.
package struct VideoEntry: Sendable, Equatable {
    /// Position in the evaluated list (after `--filter-video`), from 0: the order of every output.
    package var index: Int
    /// 1-based line number in the list file.
    package var line: Int
    /// The folder of frames, as the list names it.
    package var path: String
    package var startFrame: Int
    /// The end frame as the reference uses it (flow: one less than the list says).
    package var endFrame: Int
    /// Class indices; empty in a test list.
    package var labels: [Int]

    package init(index: Int, line: Int, path: String, startFrame: Int, endFrame: Int, labels: [Int]) {
        self.index = index
        self.line = line
        self.path = path
        self.startFrame = startFrame
        self.endFrame = endFrame
        self.labels = labels
    }

    /// `end_frame - start_frame + 1`.
    package var numFrames: Int { endFrame - startFrame + 1 }

    /// `os.path.basename(path)`.
    package var baseName: String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// The id `test.py` prints in its predictions file: `int(basename)` (so `00012` is `12`), or
    /// the base name itself when it is not an integer (where the reference would stop).
    package var videoID: String {
        PythonInt.parse(baseName).map(String.init) ?? baseName
    }

    /// "video PATH (list line N)", for messages.
    package var described: String { "video \(path) (list line \(line))" }
}

/// An evaluation list in the reference layout (`VideoDataSet._parse_list`).
package struct VideoList: Sendable {
    package var entries: [VideoEntry]
    /// The separator used (`" "` or `";"`).
    package var separator: String
    /// Whether the list has labels (`test.py --evaluate`); a test list has none.
    package var hasLabels: Bool
    /// Lines with a video before `--filter-video` dropped any.
    package var originalCount: Int
    /// Whether any video has more than one label.
    package var multiLabel: Bool { entries.contains { $0.labels.count > 1 } }

    /// Parses the list text. `separator` nil: `";"` when the first line with text has one, else
    /// `" "`. `filterVideo`: as the reference, a labelled list keeps only the videos with at least
    /// that many frames (`end - start + 1`); a test list keeps every video. Flow lists lose one
    /// frame at the end (`end_frame -= 1`, as the reference does for flow).
    ///
    /// Errors name the file and line: too few fields, a frame number or label that is not an
    /// integer, an end before the start, a first frame below 1, labels on some lines only, no video.
    /// Blank lines are skipped (the reference would stop at them).
    package static func parse(text: String, file: String, separator: String? = nil, filterVideo: Int = 0,
                              modality: Modality = .rgb) throws -> VideoList {
        // "\r\n" is one Character in Swift: both end a line.
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        func fail(_ line: Int, _ message: String) -> BLError {
            BLError(.invalidArgument, message, file: file, location: "line \(line)")
        }
        let sep: String
        if let separator {
            guard !separator.isEmpty else { throw BLError(.invalidArgument, "the separator must not be empty") }
            sep = separator
        } else {
            let first = lines.first { !$0.allSatisfy(\.isWhitespace) } ?? ""
            sep = first.contains(";") ? ";" : " "
        }
        var parsed: [(line: Int, fields: [String])] = []
        for (i, raw) in lines.enumerated() {
            let text = raw.trimmingPythonWhitespace
            if text.isEmpty { continue }
            var fields = text.components(separatedBy: sep)
            if sep == " " { fields = fields.filter { !$0.isEmpty } }
            parsed.append((i + 1, fields))
        }
        guard !parsed.isEmpty else { throw BLError(.invalidArgument, "the list names no video", file: file) }
        var labelled: Bool? = nil
        var entries: [VideoEntry] = []
        for (line, fields) in parsed {
            guard fields.count >= 3 else {
                throw fail(line, "expected `path\(sep)start_frame\(sep)end_frame[\(sep)label...]` (separator \"\(sep)\"), found \(fields.count) field\(fields.count == 1 ? "" : "s")")
            }
            let path = fields[0]
            guard !path.isEmpty else { throw fail(line, "the video path is empty") }
            guard let start = PythonInt.parse(fields[1]) else {
                throw fail(line, "start frame '\(fields[1])' of video \(path) is not an integer")
            }
            guard let end = PythonInt.parse(fields[2]) else {
                throw fail(line, "end frame '\(fields[2])' of video \(path) is not an integer")
            }
            guard start >= 1 else { throw fail(line, "start frame \(start) of video \(path): frames are numbered from 1") }
            guard end >= start else { throw fail(line, "end frame \(end) of video \(path) is before its start frame \(start)") }
            var labels: [Int] = []
            for f in fields.dropFirst(3) {
                guard let v = PythonInt.parseLabel(f) else {
                    throw fail(line, "label '\(f)' of video \(path) is not a class index (a whole number)")
                }
                labels.append(v)
            }
            let has = !labels.isEmpty
            if let l = labelled, l != has {
                throw fail(line, has ? "video \(path) has a label but the lines before have none: a list is either labelled or a test list"
                                     : "video \(path) has no label but the lines before have one: a list is either labelled or a test list")
            }
            labelled = has
            // The reference filters on the list's frame count, before the flow adjustment.
            if has && end - start + 1 < filterVideo { continue }
            entries.append(VideoEntry(index: entries.count, line: line, path: path, startFrame: start,
                                      endFrame: modality == .flow ? end - 1 : end, labels: labels))
        }
        guard !entries.isEmpty else {
            throw BLError(.invalidArgument, "no video of the \(parsed.count) in the list has at least \(filterVideo) frames (--filter-video)", file: file)
        }
        return VideoList(entries: entries, separator: sep, hasLabels: labelled ?? false, originalCount: parsed.count)
    }
}

/// Python's `int(text)` and `int(float(text))` for list fields.
package enum PythonInt {
    /// `int(text)`: optional whitespace and sign, decimal digits with single underscores between them.
    package static func parse<S: StringProtocol>(_ text: S) -> Int? {
        var s = Substring(text).trimmingPythonWhitespace
        var negative = false
        if let f = s.first, f == "+" || f == "-" { negative = f == "-"; s = s.dropFirst() }
        guard let first = s.first, first.isASCII, first.isNumber, let last = s.last, last != "_",
              !s.contains("__") else { return nil }
        let digits = s.filter { $0 != "_" }
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(digits) else { return nil }
        return negative ? -v : v
    }

    /// A label: `float(text)` then `int(...)` in the reference; accepted here only when the value
    /// is a whole number (`3`, `3.0`), since a fractional class index is a broken list.
    package static func parseLabel<S: StringProtocol>(_ text: S) -> Int? {
        if let v = parse(text) { return v }
        let s = Substring(text).trimmingPythonWhitespace
        guard !s.isEmpty, s.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }),
              let d = Double(String(s)), d.isFinite, d == d.rounded(), abs(d) < 1e15 else { return nil }
        return Int(d)
    }
}

extension StringProtocol {
    /// Without leading and trailing whitespace, as Python's `str.strip()`.
    var trimmingPythonWhitespace: Substring {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return s
    }
}
