// The provider object that Pulumi serializes into the state of every
// PinnedMap. It must stay small and stable: it captures nothing but these
// functions, and at call time loads the implementation by package name from
// the Pulumi project's directory (the dynamic provider's working directory),
// so the native addon is never serialized and stacks always run the
// pulumi-ebpf that is installed now. tests/package.test.ts pins its serialized
// text: change this file only with a migration plan.
/* eslint-disable @typescript-eslint/no-require-imports */

function loadImplementation() {
  const { createRequire } = require("node:module");
  const { join } = require("node:path");
  const projectRequire = createRequire(join(process.cwd(), "__pulumi_ebpf_provider__.js"));
  try {
    return projectRequire("pulumi-ebpf/dynamic").provider;
  } catch (error) {
    throw new Error(`pulumi-ebpf: cannot load pulumi-ebpf/dynamic from ${process.cwd()} (install pulumi-ebpf in the Pulumi project): ${error}`);
  }
}

/** The serialized dynamic provider of PinnedMap: each method defers to pulumi-ebpf/dynamic. */
export const stubProvider = {
  check: (olds: unknown, news: unknown) => loadImplementation().check(olds, news),
  diff: (id: unknown, olds: unknown, news: unknown) => loadImplementation().diff(id, olds, news),
  create: (inputs: unknown) => loadImplementation().create(inputs),
  read: (id: unknown, props: unknown) => loadImplementation().read(id, props),
  update: (id: unknown, olds: unknown, news: unknown) => loadImplementation().update(id, olds, news),
  delete: (id: unknown, props: unknown) => loadImplementation().delete(id, props),
};
