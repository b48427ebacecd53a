import Foundation
import Testing
import BLTestSupport

/// Issue 12, item 28: inputs the fuzzers found (`Fixtures/fuzz-regressions/<target>/`) replayed
/// through the same targets (`blconvert-fuzz TARGET FILE...`, the replay build of
/// Sources/blconvert-fuzz), with the fixtures each target is seeded from.
@Suite struct FuzzRegressionTests {
    static let binary: String? = CLI.binary.map { ($0 as NSString).deletingLastPathComponent + "/blconvert-fuzz" }
        .flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil }

    static func files(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") && $0 != "README.md" }
            .sorted().map { dir + "/" + $0 }
    }

    static func replay(_ target: String, _ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        let bin = try #require(binary, "blconvert-fuzz was not built")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = [target] + paths
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationReason == .exit && p.terminationStatus == 0, "\(target): \(p.terminationStatus)")
        #expect(String(decoding: data, as: UTF8.self).split(separator: "\n").count == paths.count, "\(target)")
    }

    @Test func foundInputsAndSeedsReplayCleanly() throws {
        let parsers = TestData.fixture("parsers")
        let seeds: [String: [String]] = [
            "pickle": Self.files(parsers).filter { $0.hasSuffix(".pkl") },
            "zip": Self.files(parsers).filter { $0.contains("_zip") },
            "legacy": Self.files(parsers).filter { $0.contains("_legacy") },
            "safetensors": [TestData.fixture("mini-a2b4-f4x2/clip0.safetensors")],
            "json": [parsers + "/expected.json", TestData.fixture("mini-a2b4-f4x2/manifest.json")],
            "npy": Self.files(TestData.fixture("media")),
            "image": [], "package": [],
        ]
        for (target, paths) in seeds.sorted(by: { $0.key < $1.key }) {
            try Self.replay(target, paths + Self.files(TestData.fixture("fuzz-regressions/\(target)")))
        }
    }
}
