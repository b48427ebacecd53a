import Foundation

/// Where the test data lives.
/// - `Fixtures/` in the repository: what a fresh clone always has (parser files, the mini case).
/// - `../shared/fixtures` beside the repository (or `$BLCONVERT_SHARED_FIXTURES`): the heavy cases,
///   used when present; tests that need them report clearly when they skip.
package enum TestData {
    package static let repoRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/BLConvertTests/TestSupport.swift
        return url
    }()

    package static func fixture(_ relative: String) -> String {
        repoRoot.appendingPathComponent("Fixtures").appendingPathComponent(relative).path
    }

    package static let sharedRoot: String? = {
        let env = ProcessInfo.processInfo.environment["BLCONVERT_SHARED_FIXTURES"]
        let candidates: [String?] = [env, repoRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures").path]
        for case let c? in candidates where FileManager.default.fileExists(atPath: c + "/README.md") {
            return c
        }
        return nil
    }()

    /// Whether the shared fixtures are present: tests that need them are enabled by it
    /// (`@Test(.enabled(if: TestData.hasShared))`), so that the runner reports them as skipped.
    package static let hasShared: Bool = {
        if sharedRoot == nil {
            skipNote("shared fixtures not found (../shared/fixtures or $BLCONVERT_SHARED_FIXTURES): the tests that need them are skipped")
        }
        return sharedRoot != nil
    }()

    /// A file under the shared fixtures, for tests enabled by `hasShared` (a path that does not
    /// exist when they are absent, so that a test missing the condition fails instead of passing).
    package static func shared(_ relative: String) -> String {
        (sharedRoot ?? "/nonexistent/shared-fixtures") + "/" + relative
    }

    /// A shared file when the fixtures are present: for tests that also check it when they can.
    package static func sharedIfPresent(_ relative: String) -> String? {
        sharedRoot.map { $0 + "/" + relative }
    }

    package static func skipNote(_ message: String) {
        FileHandle.standardError.write(Data("SKIP: \(message)\n".utf8))
    }

    package static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("blconvert-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// A seeded generator (SplitMix64) so failures reproduce; shared by the test suites.
package struct SeededRandom {
    package var state: UInt64
    package init(state: UInt64) { self.state = state }
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi), 53 random bits.
    package mutating func uniform(_ lo: Double, _ hi: Double) -> Double {
        lo + (hi - lo) * Double(next() >> 11) / Double(1 << 53)
    }
    /// `n` floats uniform in [lo, hi), 24 random bits each.
    package mutating func floats(_ n: Int, _ lo: Float, _ hi: Float) -> [Float] {
        (0..<n).map { _ in lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24) }
    }
}
