import ArgumentParser
import BLCore
import BLCheckpoint

struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write every tensor of a checkpoint to a safetensors file (the plain .pth -> safetensors conversion).",
        discussion: """
        Works on any supported file, model or not. Each tensor is written contiguous,
        in its own dtype, under its dotted path in the file
        (state_dict.module.conv1.weight, nested.a.b.0). The non-tensor entries (epoch,
        arch, optimizer settings, HDF5 attributes) go into __metadata__ as JSON text,
        with blconvert.source and blconvert.format. The output is written to a
        temporary file and renamed, so a failure leaves nothing behind; an existing
        output file is replaced only with --force.

        Example:
          blconvert extract train.pth.tar -o train.safetensors
        """
    )

    @Argument(help: "Checkpoint file to read.")
    var file: String

    @Option(name: .shortAndLong, help: "Output .safetensors file.")
    var output: String

    @Flag(name: .long, help: "Replace the output file if it exists.")
    var force = false

    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        if output == file { throw ValidationError("the output must not be the input file") }
    }

    func run() throws {
        let result = try reportingErrors { () -> Extractor.Result in
            if FileKind.of(file) == .directory { throw BLError(.io, "is a directory, expected a checkpoint file", file: file) }
            try checkNotAnInput(output, option: "--output", inputs: [file])
            try checkReplaceable(output, force: force) {
                FileKind.of(output) == .directory ? "is a directory; --force only replaces a file" : nil
            }
            let ck = try Checkpoint.open(path: file)
            return try Extractor.extract(ck, sourceName: file.lastPathComponent, to: output)
        }
        if json.json {
            Console.out(JSON.object([
                ("output", .string(output)),
                ("tensor_count", .int(Int64(result.tensorCount))),
                ("tensor_bytes", .int(Int64(result.bytes))),
                ("metadata_entries", .int(Int64(result.metadataEntries))),
            ]).strictJSONText)
        } else {
            Console.out("wrote \(output): \(result.tensorCount) tensors, \(Format.bytes(result.bytes)), \(result.metadataEntries) metadata entries")
        }
    }
}
