import type { KafkaPort } from "./port.ts";

/** Kafka protocol error codes DeleteGroups answers with. */
const NON_EMPTY_GROUP = 68;
const GROUP_ID_NOT_FOUND = 69;

/**
 * Deletes a consumer group Lifeline made for one run (a controller following its rollout, a reader, a wait for a
 * decision) once its consumer has left, so that runs leave no group and no committed offsets on the broker.
 * A group the broker already dropped is fine; anything else is thrown with the broker's words.
 */
export async function deleteRunGroup(kafka: KafkaPort, groupId: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    // The consumer's LeaveGroup has been answered when disconnect resolved; a rebalance still settling makes the
    // group briefly non-empty: asked again a few times.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.deleteGroups([groupId]);
        return;
      } catch (error) {
        const codes = ((error as { groups?: Array<{ errorCode?: number }> }).groups ?? []).map(
          (g) => g.errorCode,
        );
        if (codes.includes(GROUP_ID_NOT_FOUND)) return;
        if (!codes.includes(NON_EMPTY_GROUP) || attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200 * (attempt + 1)));
      }
    }
  } finally {
    await admin.disconnect();
  }
}
