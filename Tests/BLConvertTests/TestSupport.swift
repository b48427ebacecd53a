import Foundation

/// Where the test data lives.
/// - `Fixtures/` in the repository: what a fresh clone always has (parser files, the mini case).
/// - `../shared/fixtures` beside the repository (or `$BLCONVERT_SHARED_FIXTURES`): the heavy cases,
///   used when present; tests that need them report clearly when they skip.
enum TestData {
    static let repoRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/BLConvertTests/TestSupport.swift
        return url
    }()

    static func fixture(_ relative: String) -> String {
        repoRoot.appendingPathComponent("Fixtures").appendingPathComponent(relative).path
    }

    static let sharedRoot: String? = {
        let env = ProcessInfo.processInfo.environment["BLCONVERT_SHARED_FIXTURES"]
        let candidates: [String?] = [env, repoRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures").path]
        for case let c? in candidates where FileManager.default.fileExists(atPath: c + "/README.md") {
            return c
        }
        return nil
    }()

    /// A file under the shared fixtures, or nil (with a note on stderr) when they are absent.
    static func shared(_ relative: String) -> String? {
        guard let root = sharedRoot else {
            skipNote("shared fixtures not found (../shared/fixtures or $BLCONVERT_SHARED_FIXTURES): skipping \(relative)")
            return nil
        }
        return root + "/" + relative
    }

    static func skipNote(_ message: String) {
        FileHandle.standardError.write(Data("SKIP: \(message)\n".utf8))
    }

    static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("blconvert-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// A seeded generator (SplitMix64) so failures reproduce; shared by the test suites.
struct SeededRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi), 53 random bits.
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double {
        lo + (hi - lo) * Double(next() >> 11) / Double(1 << 53)
    }
    /// `n` floats uniform in [lo, hi), 24 random bits each.
    mutating func floats(_ n: Int, _ lo: Float, _ hi: Float) -> [Float] {
        (0..<n).map { _ in lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24) }
    }
}
