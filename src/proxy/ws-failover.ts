// A WebSocket handshake whose connection could not be made (nothing was sent) is tried again on
// another target of the route, as an HTTP call is (proxy/retry.ts), within backend.client.retries.
// A handshake the backend answered, or that failed after it was sent, is not retried.

import type { ForwardTarget } from "./forward.ts";
import { type FailoverRoute, notSent } from "./retry.ts";
import type { PickContext } from "./balance.ts";
import { proxyWebSocket, type WebSocketCall } from "./websocket.ts";

export async function proxyWebSocketWithFailover(
  req: Request,
  route: FailoverRoute,
  ctx: PickContext,
  call: WebSocketCall & { preserveHost: boolean },
): Promise<Response> {
  const retries = route.retry?.retries ?? 0;
  const tried = new Set<ForwardTarget>();
  let target = call.target;
  for (let k = 0;; k++) {
    tried.add(target);
    try {
      return await proxyWebSocket(req, { ...call, target, hostHeader: call.preserveHost ? call.hostHeader : target.hostHeader });
    } catch (e) {
      if (k >= retries || !notSent(e) || call.signal.aborted) throw e;
      let next: ForwardTarget;
      try {
        next = route.pickTarget(ctx, tried);
      } catch {
        throw e; // no usable target left: the failure itself is the better answer
      }
      if (tried.has(next)) throw e;
      target = next;
    }
  }
}
