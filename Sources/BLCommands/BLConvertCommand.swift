import ArgumentParser
import BLKernels
import BLConvert
import BLCore
/// The `blconvert` command: bLVNet-TAM checkpoints in, a verified Swift-native model out.
package struct BLConvertCommand: ParsableCommand {
    package init() {}

    package static let configuration = CommandConfiguration(
        commandName: "blconvert",
        abstract: "Convert bLVNet-TAM PyTorch checkpoints into a Swift-native CPU model and prove parity.",
        discussion: """
        Typical flow:
          blconvert inspect model.pth.tar            what a checkpoint holds (nothing
                                                     in it is executed)
          blconvert import model.pth.tar -o m.blc --frames 16
          blconvert prepare m.blc                    the kernel cache for this CPU (a
                                                     package made on another one)
          blconvert verify m.blc clip0.safetensors   parity against reference clips
          blconvert run m.blc frames/ --top 5        predictions for a folder of
                                                     frames or a clip tensor
          blconvert graph m.blc --input 224x224      the graph, FLOPs and memory
          blconvert eval m.blc --list val.txt        top-1/top-5 on a video list, as
                                                     the reference test.py
          blconvert bench m.blc                      speed
          blconvert frames v.webm -o frames/         a video's frames, as the reference
                                                     extraction writes them

        Exit status: 0 success, 1 verification failed, 2 bad input (unreadable,
        corrupt or refused file, wrong arguments).
        """,
        version: BLConvertInfo.version,
        subcommands: [Inspect.self, Extract.self, Import.self, Prepare.self, GraphCommand.self, Verify.self, Run.self,
                      Eval.self, EvalMerge.self, Frames.self, Bench.self]
    )

    /// Parses the process's arguments, runs the subcommand and exits with the documented status:
    /// 0 success (and `--help`, `--version`), 1 a verification failed, 2 any bad input, usage
    /// errors included (ArgumentParser alone would use 64 for those).
    package static func main() {
        // This process runs OpenBLAS single-threaded (our kernels parallelise around it): its idle
        // worker threads would only spin on a core the kernels need.
        BLASRuntime.stopIdleThreads()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let status = exitStatus(for: error)
            if status == 0 || error is ExitCode { exit(withError: error) }
            Console.err(fullMessage(for: error))
            terminate(status)
        }
    }

    /// The exit status for an error a command threw: `ExitCode`s keep theirs (1 or 2),
    /// help and version requests 0, everything else (usage errors included) 2.
    package static func exitStatus(for error: Error) -> Int32 {
        if let e = error as? ExitCode { return e.rawValue }
        let code = exitCode(for: error)
        return code == .success ? 0 : 2
    }
}

/// Ends the process (a free function: inside a command, `exit` names ArgumentParser's).
private func terminate(_ status: Int32) -> Never { exit(status) }
