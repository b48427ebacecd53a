import BLCore

/// Whether two paths name the same existing file (same device and inode), however spelled.
func sameFile(_ a: String, _ b: String) -> Bool {
    var sa = stat(), sb = stat()
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
}

/// Refuses an `output` that already exists unless `force` is given; with `force`, `refusal` says
/// why the existing entry must still not be replaced (nil: it may be).
func checkReplaceable(_ output: String, force: Bool, refusal: () -> String?) throws {
    guard access(output, F_OK) == 0 else { return }
    guard force else {
        throw BLError(.invalidArgument, "already exists: choose another output or pass --force to replace it", file: output)
    }
    if let why = refusal() { throw BLError(.invalidArgument, why, file: output) }
}

/// Refuses an output path that names one of the inputs (it would be replaced).
func checkNotAnInput(_ output: String, option: String, inputs: [String]) throws {
    if let input = inputs.first(where: { sameFile(output, $0) }) {
        throw BLError(.invalidArgument, "\(option) names the input \(input); it would be overwritten", file: output)
    }
}
