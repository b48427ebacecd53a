import BLCore

/// A deterministic 1/N of a list: shard K of N holds the videos whose list position i has
/// `i % N == K` (round robin, so long and short videos spread evenly).
package struct Shard: Sendable, Equatable, CustomStringConvertible {
    package var index: Int
    package var count: Int

    package static let whole = Shard(index: 0, count: 1)

    package init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// `K/N` with 0 <= K < N.
    package init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = PythonInt.parse(parts[0]), let n = PythonInt.parse(parts[1]) else {
            throw BLError(.invalidArgument, "--shard takes K/N (shard K of N, K from 0), got '\(text)'")
        }
        try self.init(checking: k, n, source: "--shard \(text)")
    }

    init(checking k: Int, _ n: Int, source: String) throws {
        guard n >= 1, n <= 1_000_000, k >= 0, k < n else {
            throw BLError(.invalidArgument, "\(source): shard \(k) of \(n) does not exist (K must be in 0...N-1)")
        }
        self.init(index: k, count: n)
    }

    /// The shard a batch scheduler gives this process, or nil when none does:
    /// - Slurm job arrays: `SLURM_ARRAY_TASK_ID` (minus `SLURM_ARRAY_TASK_MIN`) of `SLURM_ARRAY_TASK_COUNT`;
    /// - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` of `BLCONVERT_SHARD_COUNT` (or `count`).
    package static func fromEnvironment(_ env: [String: String], count: Int? = nil) throws -> Shard? {
        if let id = env["SLURM_ARRAY_TASK_ID"], let total = env["SLURM_ARRAY_TASK_COUNT"] {
            guard let k = PythonInt.parse(id), let n = PythonInt.parse(total) else {
                throw BLError(.invalidArgument, "SLURM_ARRAY_TASK_ID=\(id) / SLURM_ARRAY_TASK_COUNT=\(total) are not integers")
            }
            let min = env["SLURM_ARRAY_TASK_MIN"].flatMap { PythonInt.parse($0) } ?? 0
            return try Shard(checking: k - min, count ?? n, source: "Slurm array task \(id) (min \(min)) of \(total)")
        }
        if let id = env["JOB_COMPLETION_INDEX"] {
            guard let k = PythonInt.parse(id) else {
                throw BLError(.invalidArgument, "JOB_COMPLETION_INDEX=\(id) is not an integer")
            }
            guard let n = count ?? env["BLCONVERT_SHARD_COUNT"].flatMap({ PythonInt.parse($0) }) else {
                throw BLError(.invalidArgument, "JOB_COMPLETION_INDEX=\(id) is set but not the shard count: set BLCONVERT_SHARD_COUNT to the Job's completions (or pass --shard K/N)")
            }
            return try Shard(checking: k, n, source: "Kubernetes completion index \(id) of \(n)")
        }
        return nil
    }

    package func contains(_ listIndex: Int) -> Bool { listIndex % count == index }

    package var description: String { "\(index)/\(count)" }

    package var json: JSON {
        count == 1 ? .null : .object([("index", .int(Int64(index))), ("count", .int(Int64(count)))])
    }
}
