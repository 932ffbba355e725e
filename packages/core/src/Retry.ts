/**
 * Declarative retry for port forwards.
 *
 * Retrying is a `Schedule`. Whatever schedule you give, only transient errors are retried
 * (see `PortForwardError.isTransient`): a pod that is not running yet, a cluster that cannot
 * be reached, a timeout, a dynamic port someone else took. `InvalidSpec`, a fixed port that is
 * in use, a missing pod or kubectl, and permission errors fail at once.
 *
 * Use it as a spec field (`PortForward.make({ ..., retry: Retry.policy() })`) or as a
 * combinator on any effect that fails with `PortForwardError` (`Retry.transient(schedule)`).
 *
 * @since 0.1.0
 */
import { Duration, Effect, Pull, Schedule } from "effect"
import { isTransient, type PortForwardError } from "./PortForwardError.ts"

/**
 * Retries `self` on `schedule`, but only failures that `accept` takes: any other failure ends
 * the effect at once, before the schedule is stepped — so a `Schedule.tap` in the schedule
 * only ever sees failures that are really retried. When the schedule is done, the last failure
 * is returned. `onRetry`, when given, runs for each failure that will be retried, once the
 * schedule has said so and before its delay.
 *
 * @category combinators
 * @since 0.1.0
 */
export const retryWhile = <A, E, R, Output, ScheduleError = never, ScheduleEnv = never>(
  self: Effect.Effect<A, E, R>,
  schedule: Schedule.Schedule<Output, E, ScheduleError, ScheduleEnv>,
  accept: (error: E) => boolean,
  onRetry?: (error: E) => Effect.Effect<void>
): Effect.Effect<A, E | ScheduleError, R | ScheduleEnv> =>
  Effect.flatMap(Schedule.toStep(schedule), (step) => {
    const retry = (error: E) =>
      Effect.clockWith((clock) => step(clock.currentTimeMillisUnsafe(), error)).pipe(
        Pull.catchDone(() => Effect.fail(error)),
        Effect.flatMap(([, delay]) =>
          onRetry === undefined ? Effect.sleep(delay) : Effect.andThen(onRetry(error), Effect.sleep(delay))
        )
      )
    const loop: Effect.Effect<A, E | ScheduleError, R | ScheduleEnv> = Effect.catch(
      self,
      (error) => accept(error) ? Effect.andThen(retry(error), loop) : Effect.fail(error)
    )
    return loop
  })

/**
 * Limits a schedule to transient errors: it stops (and the last error is returned) as soon as
 * a failure is not transient. For `Effect.retry` users; note that the schedule is stepped
 * before the check (a `Schedule.tap` inside it also sees the failure that ends it). The
 * library's own retries use {@link retryWhile}, which checks first.
 *
 * @category combinators
 * @since 0.1.0
 */
export const transientOnly = <Output, Error = never, Env = never>(
  schedule: Schedule.Schedule<Output, PortForwardError, Error, Env>
): Schedule.Schedule<Output, PortForwardError, Error, Env> =>
  Schedule.while(schedule, ({ input }) => isTransient(input))

/**
 * Options of {@link policy}.
 *
 * @category models
 * @since 0.1.0
 */
export interface PolicyOptions {
  /** The first delay. Default 200 ms. */
  readonly base?: Duration.Input | undefined
  /** The growth factor of the delay. Default 2. */
  readonly factor?: number | undefined
  /** The longest single delay. Default 5 seconds. */
  readonly maxDelay?: Duration.Input | undefined
  /** How many retries at most. Default 8. */
  readonly times?: number | undefined
  /** How long retrying may go on in all. Default 1 minute. */
  readonly within?: Duration.Input | undefined
}

/**
 * Jittered exponential backoff, each delay capped, bounded in count and total time. Which
 * errors are retried is not part of the schedule: `spec.retry` and {@link transient} retry
 * transient errors, `spec.reconnect` the reconnectable ones.
 *
 * @example
 * ```ts
 * PortForward.make({ target: "pod/db", ports: [5432], retry: Retry.policy({ times: 5 }) })
 * ```
 *
 * @category schedules
 * @since 0.1.0
 */
export const policy = (options: PolicyOptions = {}): Schedule.Schedule<Duration.Duration, PortForwardError> =>
  Schedule.min([
    // jitter first, so that the cap holds for the jittered delay too
    Schedule.exponential(options.base ?? Duration.millis(200), options.factor ?? 2).pipe(Schedule.jittered),
    Schedule.spaced(options.maxDelay ?? Duration.seconds(5))
  ]).pipe(
    Schedule.upTo({ times: options.times ?? 8, duration: options.within ?? Duration.minutes(1) }),
    Schedule.setInputType<PortForwardError>()
  )

/**
 * The default policy: {@link policy} with its defaults (200 ms doubling, jittered, each delay
 * capped at 5 s, at most 8 retries within a minute).
 *
 * @category schedules
 * @since 0.1.0
 */
export const defaultPolicy: Schedule.Schedule<Duration.Duration, PortForwardError> = policy()

/**
 * Retries an effect that fails with `PortForwardError` on `schedule` (default
 * {@link defaultPolicy}), transient errors only.
 *
 * @example
 * ```ts
 * const fwd = yield* PortForward.make(spec).pipe(Retry.transient(Schedule.spaced("1 second")))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const transient = (
  schedule: Schedule.Schedule<unknown, PortForwardError> = defaultPolicy
) =>
<A, E extends PortForwardError, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  retryWhile(self, schedule, isTransient)
