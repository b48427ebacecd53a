import BLCore
import Foundation

/// A folder of video frames named by 1-based frame number: `00001.png`, `00002.png`, ...
/// (any number of digits; `.png`, `.jpg` or `.jpeg`, any letter case).
package struct FrameFolder: Sendable {
    package let path: String
    /// `files[k]` is the path of frame number `k + 1`.
    package let files: [String]

    package var frameCount: Int { files.count }

    /// Lists the frames. Errors: the folder is missing or not a folder, holds no frames, mixes
    /// PNG and JPEG frames, numbers a frame twice (`1.png` and `0001.png`), has a frame 0, or skips
    /// a number. Other files are ignored.
    package init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw BLError(.io, "frame folder does not exist", file: path)
        }
        guard isDir.boolValue else {
            throw BLError(.io, "expected a folder of frames, found a file", file: path)
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw BLError(.io, "cannot list frame folder: \(error.localizedDescription)", file: path)
        }
        var byNumber: [Int: String] = [:]
        var kinds = Set<String>()
        for name in names.sorted() {
            guard let dot = name.lastIndex(of: ".") else { continue }
            let stem = name[..<dot]
            let ext = name[name.index(after: dot)...].lowercased()
            guard ["png", "jpg", "jpeg"].contains(ext), !stem.isEmpty, stem.count <= 9,
                  stem.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(stem) else { continue }
            kinds.insert(ext == "png" ? "PNG" : "JPEG")
            if let other = byNumber[number] {
                throw BLError(.invalidArgument, "frame \(number) appears twice: \(other) and \(name)", file: path)
            }
            byNumber[number] = name
        }
        guard !byNumber.isEmpty else {
            throw BLError(.invalidArgument, "no frames found (expected files named 00001.png, 00002.png, ... or .jpg)", file: path)
        }
        if kinds.count > 1 {
            throw BLError(.invalidArgument, "the folder mixes PNG and JPEG frames; keep one format", file: path)
        }
        if let zero = byNumber[0] {
            throw BLError(.invalidArgument, "found frame number 0 (\(zero)): frames are numbered from 1 (00001.png, ...) as the reference loads them", file: path)
        }
        let count = byNumber.keys.max() ?? 0
        // Numbered 1...count without gaps means exactly `count` frames: check before reserving
        // anything for a claimed count (a lone 999999999.jpg must not reserve gigabytes).
        if count != byNumber.count {
            let missing = (1...count).first { byNumber[$0] == nil } ?? count
            throw BLError(.invalidArgument, "frame \(missing) is missing: frames must be numbered 1...\(count) without gaps", file: path)
        }
        var files: [String] = []
        files.reserveCapacity(count)
        let inside = try FrameFolder.resolved(path)
        for n in 1...count {
            guard let name = byNumber[n] else {
                throw BLError(.invalidArgument, "frame \(n) is missing: frames must be numbered 1...\(count) without gaps", file: path)
            }
            let file = (path as NSString).appendingPathComponent(name)
            // A frame that is a symbolic link must stay inside the folder.
            let target = try FrameFolder.resolved(file)
            guard target.hasPrefix(inside.hasSuffix("/") ? inside : inside + "/") else {
                throw BLError(.invalidArgument, "frame \(name) is a symbolic link to \(target), outside the frame folder", file: path)
            }
            files.append(file)
        }
        self.files = files
    }

    /// The canonical path (symbolic links resolved), or an error naming the path.
    static func resolved(_ path: String) throws -> String {
        guard let p = realpath(path, nil) else {
            throw BLError(.io, "cannot resolve the path: \(String(cString: strerror(errno)))", file: path)
        }
        defer { free(p) }
        return String(cString: p)
    }
}
