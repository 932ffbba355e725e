export * as Smoke from "./Smoke.ts"
