/**
 * Loads fuse-native (CommonJS) and names the parts of its API we use. The dependency is patched at install
 * time (scripts/patch-fuse-native.mjs): see native-notes/ for what the patch changes.
 */
import { createRequire } from 'node:module';

export type FuseOps = Record<string, (...args: any[]) => void>;

export interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}

export interface FuseClass {
  new (mnt: string, ops: FuseOps, opts: Record<string, unknown>): FuseInstance;
  unmount(mnt: string, cb: (err: Error | null) => void): void;
  isConfigured(cb: (err: Error | null, yes: boolean) => void): void;
}

let cached: FuseClass | undefined;
/**
 * fuse-native with an `extraOptions` string of raw libfuse -o options (big_writes and friends are not in
 * its whitelist). Our install-time patch adds the option; this subclass adds it where the patch is absent.
 */
export function loadFuse(): FuseClass {
  if (cached) return cached;
  const Base = createRequire(import.meta.url)('fuse-native') as new (...a: unknown[]) => { opts: { extraOptions?: string } };
  class Fuse extends Base {
    _fuseOptions(): string {
      const base = (Base.prototype as unknown as { _fuseOptions(this: unknown): string })._fuseOptions.call(this);
      const extra = this.opts.extraOptions;
      if (!extra || base.includes(extra)) return base;
      return base ? `${base},${extra}` : `-o${extra}`;
    }
  }
  Object.assign(Fuse, Base);
  cached = Fuse as unknown as FuseClass;
  return cached;
}
