import ArgumentParser
import BLCore
import BLVideo
import Foundation
struct Frames: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Extract the frames of videos as the reference's ffmpeg command does, without ffmpeg.",
        discussion: """
        The reference workflow (tools/extract_videos_st2st_v2.py) runs, per video,
          ffmpeg -i V -vf scale=-1:256 -threads 1 -qmin 1 -qmax 1 -q:v 0 %05d.jpg
        (scale=256:-1 when the stored width is not the larger side). This command
        does the same through FFmpeg's libraries: every frame ffmpeg would write, with
        its numbering (ffmpeg's constant-frame-rate output repeats or drops frames
        when timestamps are irregular), rotated as ffmpeg rotates it, scaled with the
        same libswscale settings and encoded by libavcodec's MJPEG encoder with the
        same settings, so the files are the reference's bytes (FFmpeg 5.1).

        One folder per video, named after the video without its extension:
        DIR/<name>/00001.jpg ... Then the list line the script writes for it,
        "DIR/<name> 1 <frames> <label>", on stdout and, with --list, into a file.
        --png writes the frames losslessly as RGB PNG (exactly what was decoded and
        scaled, before JPEG compression).

        Each folder is written into a temporary folder beside it and renamed; an
        error leaves nothing behind. Existing folders and list files are replaced
        only with --force. A video that cannot be read is reported and the others
        are still extracted. Containers read: MP4/MOV, Matroska/WebM, AVI.

        Exit status: 0 every video extracted, 2 bad input (some video unreadable,
        or wrong arguments).

        Examples:
          blconvert frames 12345.webm -o validation_256
          blconvert frames v/*.webm -o val_256 --list val_256.txt --label 3
          blconvert frames clip.mp4 -o frames --png --json
        """
    )

    @Argument(help: "Video files (MP4/MOV, WebM/Matroska, AVI).")
    var videos: [String] = []

    @Option(name: .shortAndLong, help: "Output folder; one sub-folder per video is written in it.")
    var output: String

    @Flag(name: .long, help: "Write lossless RGB PNG frames (%05d.png) instead of the reference JPEGs.")
    var png = false

    @Option(name: .long, help: "Also write the list lines to this file.")
    var list: String?

    @Option(name: .long, help: "Class id ending each list line (-1, as the script writes for an unknown label).")
    var label: Int = -1

    @Flag(name: .long, help: "List lines without the label, as the script writes the test list.")
    var noLabel = false

    @Option(name: .long, help: "Length the short side is scaled to.")
    var shortSide: Int = 256

    @Option(name: .long, help: "Decoder threads (the frames are the same for any count).")
    var threads: Int = 1

    @Flag(name: .long, help: "Replace existing output folders and list file.")
    var force = false

    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        if videos.isEmpty { throw ValidationError("give at least one video file") }
        if shortSide < 1 || shortSide > 16384 { throw ValidationError("--short-side must be in 1...16384") }
        if threads < 1 || threads > 64 { throw ValidationError("--threads must be in 1...64") }
        let names = videos.map(Self.folderName)
        if let dup = Dictionary(grouping: names, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw ValidationError("two videos would share the output folder '\(dup)'")
        }
        if let bad = names.first(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
            throw ValidationError("no folder name can be made from a video named '\(bad)'")
        }
    }

    /// The video's file name without its last extension (the script's video id).
    static func folderName(_ video: String) -> String {
        let name = video.lastPathComponent
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }

    /// Python's os.path.join(dir, name).
    static func join(_ dir: String, _ name: String) -> String {
        dir.isEmpty || dir.hasSuffix("/") ? dir + name : dir + "/" + name
    }

    struct Done {
        var video: String
        var folder: String
        var info: VideoInfo
        var seconds: Double
    }

    func run() throws {
        var done: [Done] = []
        var errors: [(String, BLError)] = []
        var options = VideoOptions()
        options.shortSide = shortSide
        options.threads = threads
        let format: ReferenceExtraction.ImageFormat = png ? .png : .jpeg
        try reportingErrors {
            if let list {
                try checkNotAnInput(list, option: "--list", inputs: videos)
                try checkReplaceable(list, force: force) {
                    (FileKind.of(list) == .directory) ? "is a directory; --force only replaces a file" : nil
                }
            }
            if (FileKind.of(output) == .directory) == false && access(output, F_OK) == 0 {
                throw BLError(.invalidArgument, "exists and is not a folder", file: output)
            }
            for video in videos {
                let folder = Self.join(output, Self.folderName(video))
                try checkNotAnInput(folder, option: "-o", inputs: videos + (list.map { [$0] } ?? []))
                try checkReplaceable(folder, force: force) {
                    (FileKind.of(folder) == .directory) ? nil : "is not a folder; --force only replaces a folder of frames"
                }
            }
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            for (i, video) in videos.enumerated() {
                let folder = Self.join(output, Self.folderName(video))
                let start = MonotonicClock.seconds()
                do {
                    let info = try Self.extract(video, in: output, as: Self.folderName(video), format: format,
                                                options: options, force: force) { n in
                        Console.progress("video \(i + 1) of \(videos.count): \(video.lastPathComponent), frame \(n)")
                    }
                    done.append(Done(video: video, folder: folder, info: info, seconds: MonotonicClock.seconds() - start))
                } catch let e as BLError {
                    let located = e.inFile(video)
                    errors.append((video, located))
                    Console.progress("")
                    Console.err("error: \(located)")
                }
            }
            Console.progress("")
            if let list {
                try AtomicFile.write(lines(done).map { $0 + "\n" }.joined(), to: list)
            }
        }
        if json.json {
            Console.out(report(done, errors).strictJSONText)
        } else {
            for line in lines(done) { Console.out(line) }
        }
        if !errors.isEmpty { throw Exit.badInput }
    }

    func lines(_ done: [Done]) -> [String] {
        done.map { noLabel ? "\($0.folder) 1 \($0.info.frames)" : "\($0.folder) 1 \($0.info.frames) \(label)" }
    }

    func report(_ done: [Done], _ errors: [(String, BLError)]) -> JSON {
        .object([
            ("output", .string(output)),
            ("format", .string(png ? "png" : "jpeg")),
            ("videos", .array(done.map { d in
                .object([
                    ("video", .string(d.video)), ("folder", .string(d.folder)),
                    ("frames", .int(Int64(d.info.frames))), ("decoded_frames", .int(Int64(d.info.decodedFrames))),
                    ("width", .int(Int64(d.info.width))), ("height", .int(Int64(d.info.height))),
                    ("coded_width", .int(Int64(d.info.codedWidth))), ("coded_height", .int(Int64(d.info.codedHeight))),
                    ("container", .string(d.info.container)), ("codec", .string(d.info.codec)),
                    ("rotation", .string(d.info.rotation)), ("frame_rate", .string(d.info.frameRate)),
                    ("seconds", .double(d.seconds)),
                ])
            })),
            ("list", .array(lines(done).map { .string($0) })),
            ("errors", .array(errors.map { .object([("video", .string($0.0)), ("error", .string($0.1.description))]) })),
        ])
    }

    /// Writes one video's frames into a temporary folder in `dir`, then renames it to
    /// `dir/name` (replacing an existing folder only with `force`, checked before).
    static func extract(_ video: String, in dir: String, as name: String, format: ReferenceExtraction.ImageFormat,
                        options: VideoOptions, force: Bool, progress: (Int) -> Void) throws -> VideoInfo {
        let folder = join(dir, name)
        let temp = try AtomicDirectory.temporarySibling(of: folder)
        do {
            let info = try ReferenceExtraction.extract(video, format: format, options: options) { n, bytes in
                let digits = String(n)
                let name = String(repeating: "0", count: max(0, 5 - digits.count)) + digits + "." + format.fileExtension
                try bytes.withUnsafeBytes { try AtomicFile.createNew(temp + "/" + name, bytes: $0) }
                progress(n)
            }
            if FileKind.of(folder) != .missing && !force {
                throw BLError(.invalidArgument, "already exists: choose another output or pass --force to replace it", file: folder)
            }
            try AtomicDirectory.install(temp, at: folder, replacingExisting: force)
            return info
        } catch {
            AtomicDirectory.removeTree(temp)
            throw error
        }
    }

}
