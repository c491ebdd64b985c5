// A response body relayed as it streams (nothing read ahead: highWaterMark 0), with one call when
// it ends: read to its end, failed, or cancelled by the client. The limiter frees a slot there and
// the access log writes its line there.

export type BodyEnd = "done" | "cancel" | "error";

export function watchedBody(body: ReadableStream<Uint8Array>, end: (bytes: number, how: BodyEnd, err?: unknown) => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let n = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let r: Awaited<ReturnType<typeof reader.read>>;
        try {
          r = await reader.read();
        } catch (e) {
          end(n, "error", e);
          throw e;
        }
        if (r.done) {
          end(n, "done");
          controller.close();
        } else {
          n += r.value.byteLength;
          controller.enqueue(r.value);
        }
      },
      cancel(reason) {
        end(n, "cancel");
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
