// What `--version` prints. The version is package.json's; a build (scripts/release.sh) injects
// the target platform, commit and date with `bun build --define`. Run from the sources, the
// platform is the running runtime's and the commit and date are "dev".
import pkg from "../package.json" with { type: "json" };

declare const OTOROSHI_BUILD_PLATFORM: string | undefined;
declare const OTOROSHI_BUILD_COMMIT: string | undefined;
declare const OTOROSHI_BUILD_DATE: string | undefined;

export const VERSION: string = pkg.version;

/** "linux-x64", "linux-arm64-musl", "darwin-arm64", "windows-x64": the release file names' suffixes. */
function runtimePlatform(): string {
  const os = process.platform === "win32" ? "windows" : process.platform;
  let libc = "";
  if (os === "linux") {
    try {
      // Node's report API (Bun and Deno have it) names the glibc version; musl has none.
      const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
      if (header && !header.glibcVersionRuntime) libc = "-musl";
    } catch {
      // Unknown libc: print the OS and CPU only.
    }
  }
  return `${os}-${process.arch}${libc}`;
}

/** `otoroshi-lite 0.2.0 (linux-arm64, 1a2b3c4, 2026-12-01, bun 1.4.5)`. */
export function versionLine(runtimeName: string, runtimeVersion: string): string {
  const platform = typeof OTOROSHI_BUILD_PLATFORM === "string" ? OTOROSHI_BUILD_PLATFORM : runtimePlatform();
  const commit = typeof OTOROSHI_BUILD_COMMIT === "string" ? OTOROSHI_BUILD_COMMIT : "dev";
  const date = typeof OTOROSHI_BUILD_DATE === "string" ? OTOROSHI_BUILD_DATE : "dev";
  return `otoroshi-lite ${VERSION} (${platform}, ${commit}, ${date}, ${runtimeName} ${runtimeVersion})`;
}
