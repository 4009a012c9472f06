import { describe, expect, it } from "vitest";
import { ReadBudget } from "../../shipper/read-budget.ts";

/** A producer's room, opened and closed by the test. */
class Room {
  hasRoom = true;
  private waiters: Array<() => void> = [];
  waitForRoom(): Promise<void> {
    return this.hasRoom ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
  open(): void {
    this.hasRoom = true;
    for (const wake of this.waiters.splice(0)) wake();
  }
}

describe("the shipper's read budget", () => {
  it("lets `concurrency` reads run, queues the rest in order, and reuses their buffers", async () => {
    const budget = new ReadBudget(new Room(), 2, 16);
    const first = budget.tryAcquire();
    const second = await budget.acquire();
    expect(first?.buffer.length).toBe(16);
    expect(budget.tryAcquire()).toBeUndefined();
    const order: string[] = [];
    const third = budget.acquire().then((slot) => {
      order.push("third");
      return slot;
    });
    first?.release();
    const slot = await third;
    expect(order).toEqual(["third"]);
    expect(slot.buffer).toBe(first?.buffer);
    second.release();
    slot.release();
    expect(budget.tryAcquire()).toBeDefined();
  });

  it("no read while the producer has no room; they go on once it has", async () => {
    const room = new Room();
    room.hasRoom = false;
    const budget = new ReadBudget(room, 4, 8);
    expect(budget.tryAcquire()).toBeUndefined();
    let got = false;
    const waiting = budget.acquire().then(() => {
      got = true;
    });
    await Promise.resolve();
    expect(got).toBe(false);
    room.open();
    await waiting;
    expect(got).toBe(true);
  });
});
