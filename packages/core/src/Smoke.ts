import { Effect } from "effect"
/** smoke */
export const hello = Effect.succeed("hello")
