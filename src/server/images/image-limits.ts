const GiB = 1024 ** 3;

/** Every cap the image pipeline enforces; the server config may override any of them. */
export interface ImageLimits {
  /** Bytes accepted from one upload or URL import, as sent (compressed or not). */
  maxUploadBytes: number;
  /** Bytes a gzip/xz stream may expand to; more is treated as a compression bomb. */
  maxDecompressedBytes: number;
  /** Largest disk (virtual size) accepted. */
  maxVirtualSizeBytes: number;
  /** Address space for qemu-img and xz. */
  toolMemoryBytes: number;
  /** Wall-clock limit for `qemu-img info`/`check` (CPU time is capped to the same seconds). */
  inspectTimeoutMs: number;
  /** Wall-clock limit for decompression and `qemu-img convert`. */
  convertTimeoutMs: number;
  /** Redirects followed by a URL import. */
  maxRedirects: number;
  /** Time without an append after which an upload session expires. */
  uploadSessionTtlMs: number;
  /** Images inspected and converted at once; more wait their turn (each conversion takes a core and disk bandwidth). */
  maxConcurrentConversions: number;
}

export const defaultImageLimits: ImageLimits = {
  maxUploadBytes: 64 * GiB,
  maxDecompressedBytes: 256 * GiB,
  maxVirtualSizeBytes: 2048 * GiB,
  toolMemoryBytes: 1 * GiB,
  inspectTimeoutMs: 60_000,
  convertTimeoutMs: 2 * 3600_000,
  maxRedirects: 3,
  uploadSessionTtlMs: 24 * 3600_000,
  maxConcurrentConversions: 2,
};
