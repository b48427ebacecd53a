import BLCore

/// Refuses an `output` that already exists unless `force` is given; with `force`, `refusal` says
/// why the existing entry must still not be replaced (nil: it may be).
func checkReplaceable(_ output: String, force: Bool, refusal: () -> String?) throws {
    guard access(output, F_OK) == 0 else { return }
    guard force else {
        throw BLError(.invalidArgument, "already exists: choose another output or pass --force to replace it", file: output)
    }
    if let why = refusal() { throw BLError(.invalidArgument, why, file: output) }
}

/// Refuses an output path that names one of the inputs, lies inside an input folder or is a
/// folder holding an input (`OutputPath.check`, the rule every command with an output follows).
func checkNotAnInput(_ output: String, option: String, inputs: [String]) throws {
    try OutputPath.check(output, option: option, inputs: inputs)
}
