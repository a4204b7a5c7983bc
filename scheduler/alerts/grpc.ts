// gRPC WatchAlerts: streams alert events from the bus to a client until it hangs up.
import * as grpc from "@grpc/grpc-js";
import type { AlertIn, DistributeXHandlers } from "../../common/types.js";
import type { AlertBus, AlertEvent } from "./bus.js";

const toAlertProto = (a: AlertEvent): AlertIn => ({ ...a });

export function alertHandlers(bus: AlertBus): Pick<DistributeXHandlers, "WatchAlerts"> {
  return {
    WatchAlerts: (call) => {
      const send = (a: AlertEvent) => call.write(toAlertProto(a));
      const stop = () => bus.off("alert", send);
      call.on("cancelled", stop);
      call.on("error", stop);
      call.on("close", stop);
      if (call.request.includeActive) for (const a of bus.activeAlerts().reverse()) send(a);
      bus.on("alert", send);
      // Tell the client the stream is open even when there is nothing to replay.
      call.sendMetadata(new grpc.Metadata());
    },
  };
}
