import BLCore
import Foundation
/// The results file of a long run: JSON lines, a header line (model, list, settings, shard), then
/// one line per finished video, written and synced as each finishes, so a killed run loses at
/// most the videos in flight and `--resume` continues from what is there.
package final class ResultsLog {
    package static let formatKey = "blconvert_eval_results"
    package let path: String
    private var fd: Int32

    /// The header and results a file holds. A last line without its newline (a run killed while
    /// writing it) is ignored; any other unreadable line is an error.
    package static func read(_ path: String) throws -> (header: EvalHeader, results: [VideoResult], validBytes: Int) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw BLError(.io, "cannot read the results file: \(error.localizedDescription)", file: path)
        }
        let bytes = [UInt8](data)
        var header: EvalHeader?
        var results: [VideoResult] = []
        var start = 0, lineNumber = 0, valid = 0
        while start < bytes.count {
            guard let nl = bytes[start...].firstIndex(of: 0x0a) else { break }  // partial last line
            lineNumber += 1
            let line = Array(bytes[start..<nl])
            start = nl + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0d }) { valid = start; continue }
            let json: JSON
            do { json = try JSONParser.parse(line) } catch let e as BLError {
                throw BLError(.format, "line \(lineNumber) is not JSON: \(e.message)", file: path)
            }
            if header == nil {
                guard json[formatKey] != nil else {
                    throw BLError(.format, "not a blconvert eval results file (the first line has no \(formatKey) key)", file: path)
                }
                header = try EvalHeader(json: json, source: path)
            } else {
                results.append(try EvalReport.result(json, source: path))
            }
            valid = start
        }
        guard let header else { throw BLError(.format, "empty results file (no header line)", file: path) }
        return (header, results, valid)
    }

    /// Creates `path` with the header, or with `resume` continues an existing file whose header
    /// agrees (returns the results already there). A new file must not exist yet.
    package init(path: String, header: EvalHeader, resume: Bool) throws {
        self.path = path
        fd = -1
        try openFile(header: header, resume: resume)
    }

    /// Results already in the file when it was opened with `resume` (by list index).
    package private(set) var previous: [Int: VideoResult] = [:]

    private func openFile(header: EvalHeader, resume: Bool) throws {
        let exists = access(path, F_OK) == 0
        if exists && !resume {
            throw BLError(.invalidArgument, "the results file already exists: pass --resume FILE to continue it, or remove it", file: path)
        }
        if exists {
            let (old, results, valid) = try Self.read(path)
            if let why = header.mismatch(old) {
                throw BLError(.invalidArgument, "the results file belongs to another evaluation: \(why)", file: path)
            }
            if old.shard != header.shard {
                throw BLError(.invalidArgument, "the results file is of shard \(old.shard), this run is shard \(header.shard)", file: path)
            }
            for r in results { previous[r.entry.index] = r }
            fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0, ftruncate(fd, off_t(valid)) == 0, lseek(fd, 0, SEEK_END) >= 0 else {
                throw BLError(.io, "cannot append to the results file: \(String(cString: strerror(errno)))", file: path)
            }
            return
        }
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw BLError(.io, "cannot create the results file: \(String(cString: strerror(errno)))", file: path)
        }
        try append(.object([(Self.formatKey, .int(1))] + header.fields))
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Appends one video's result and syncs it to disk.
    package func append(_ result: VideoResult) throws {
        try append(EvalReport.videoJSON(result))
    }

    private func append(_ json: JSON) throws {
        let bytes = Array((json.serialized() + "\n").utf8)
        try bytes.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw BLError(.io, "cannot write the results file: \(String(cString: strerror(errno)))", file: path) }
                off += n
            }
        }
        _ = fsync(fd)
    }
}

/// Reading outputs back (`eval-merge`): a `--json` document or a results file.
package enum EvalParts {
    /// The header and results of one part.
    package static func read(_ path: String) throws -> (header: EvalHeader, results: [VideoResult]) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw BLError(.io, "cannot read: \(error.localizedDescription)", file: path)
        }
        let bytes = [UInt8](data)
        let firstLine = bytes.firstIndex(of: 0x0a).map { Array(bytes[..<$0]) } ?? bytes
        if let j = try? JSONParser.parse(firstLine), j[ResultsLog.formatKey] != nil {
            let r = try ResultsLog.read(path)
            return (r.header, r.results)
        }
        let json: JSON
        do { json = try JSONParser.parse(bytes) } catch let e as BLError {
            throw BLError(.format, "neither an eval --json output nor a results file: \(e.message)", file: path)
        }
        guard let videos = json["videos"]?.arrayValue else {
            throw BLError(.format, "not a blconvert eval --json output (no videos)", file: path)
        }
        return (try EvalHeader(json: json, source: path), try videos.map { try EvalReport.result($0, source: path) })
    }

    /// One unsharded report from the parts of the shards: every part of the same evaluation,
    /// every video of the list exactly once (a video in two parts must have the same result).
    package static func merge(_ parts: [(path: String, header: EvalHeader, results: [VideoResult])]) throws -> EvalReport {
        guard let first = parts.first else { throw BLError(.invalidArgument, "no parts to merge") }
        var byIndex: [Int: (VideoResult, String)] = [:]
        for part in parts {
            if let why = first.header.mismatch(part.header) {
                throw BLError(.mismatch, "not the same evaluation as \(first.path): \(why)", file: part.path)
            }
            if part.header.shard.count != first.header.shard.count {
                throw BLError(.mismatch, "shard \(part.header.shard) but \(first.path) is shard \(first.header.shard)", file: part.path)
            }
            for r in part.results {
                guard r.entry.index >= 0, r.entry.index < first.header.videos, part.header.shard.contains(r.entry.index) else {
                    throw BLError(.format, "video \(r.entry.path) (index \(r.entry.index)) does not belong to shard \(part.header.shard)", file: part.path)
                }
                if let (other, otherPath) = byIndex[r.entry.index] {
                    guard other.logits == r.logits && other.error == r.error else {
                        throw BLError(.mismatch, "video \(r.entry.path) has another result in \(otherPath)", file: part.path)
                    }
                    continue
                }
                byIndex[r.entry.index] = (r, part.path)
            }
        }
        let missing = (0..<first.header.videos).filter { byIndex[$0] == nil }
        if !missing.isEmpty {
            let shards = Set(missing.map { $0 % first.header.shard.count }).sorted()
            throw BLError(.invalidArgument, "\(missing.count) of \(first.header.videos) videos have no result (list positions \(missing.prefix(5).map(String.init).joined(separator: ", "))\(missing.count > 5 ? ", ..." : "")); missing or unfinished shards: \(shards.map { "\($0)/\(first.header.shard.count)" }.joined(separator: " "))")
        }
        var header = first.header
        header.shard = .whole
        return EvalReport(header: header, results: byIndex.values.map(\.0))
    }
}
