import ArgumentParser

/// `--json`: machine-readable output on stdout.
struct JSONOutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print machine-readable JSON on stdout instead of the text report.")
    var json = false
}
