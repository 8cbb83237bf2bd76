"""Resolution scenarios for `generate_train.py --steps` (writes train_steps.jsonl): resolutions told the ways agents
tell them besides "I've done X", and non-resolutions that sound helpful.

Why: the served head reads only "I've done X" sentences as a resolution (every template resolution is one), so on the
held-out splits it misses a next step the customer takes ("fill in the claim form on our website"), a fix told as a
fact, or an action booked for later. Each scenario below has 4-5 concrete resolutions of those kinds and 3-4 vague
ones (policy, "passed on", "keep an eye on it"); one of each is drawn. The other behaviours come from
phrasings_wide.py. Written from the rubric's resolution descriptions, not from any held-out sentence; validate.py
checks that no conversation here is in a held-out split.
"""

from __future__ import annotations

# Per tenant: (customer opening, concrete resolutions, vague non-resolutions, recap step, when); one of each list drawn.
SCENARIOS = {
    "shopright": [
        ("My {p} arrived with a crack in it.", [
            "A replacement {p} is already on its way to you, tracking comes by email tonight.",
            "Just take it to any ShopRight store and they'll swap it on the spot.",
            "Print the prepaid label I've emailed you and drop the parcel at any post office.",
            "The courier will collect the damaged {p} on Monday and bring the new one at the same time.",
            "Your refund for the {p} has been approved and shows on your card in 3-5 days."],
         ["Cracks like that are usually from the courier, not from us.",
          "I'll make a note of it on your order.",
          "Let me know if it gets worse."],
         "the replacement {p} is sent", "within two working days"),
        ("I still haven't got my refund for the {p}.", [
            "The refund was issued this morning, so it should be back on your card by Friday.",
            "Your refund is processed, and the confirmation email is in your inbox now.",
            "If you reply with a photo of the return receipt, the refund goes out the same day.",
            "The warehouse logged the {p} yesterday, so the money is released today."],
         ["Refunds are handled by our finance team.",
          "I've passed your message on to the returns department.",
          "It can take a while, I'm afraid."],
         "the refund is released", "by Friday"),
        ("The {p} I bought is the wrong size.", [
            "You can exchange it for free from your account page, under Orders and then Exchange.",
            "The right size is reserved for you, and it ships as soon as the courier collects this one.",
            "Book a free collection on our returns page and we'll send the other size the same day.",
            "A new {p} in your size leaves our warehouse today."],
         ["Sizes do vary between brands.",
          "Have a look at the size guide next time.",
          "I can't change orders once they've shipped."],
         "the other size is sent", "by Thursday"),
        ("My discount code didn't work on the {p}.", [
            "The discount has been credited back to your card, 15 % of the order.",
            "Your order now shows the code applied, and the difference is refunded.",
            "Reply with the code and I'll take the difference off straight away."],
         ["Codes have their own terms and conditions.",
          "Sometimes codes expire before the date on the email.",
          "Our marketing team looks after discount codes."],
         "the discount is refunded", "within three days"),
    ],
    "northbank": [
        ("I lost my debit card yesterday.", [
            "Your old card is cancelled, and the new one arrives by post within three working days.",
            "You can freeze the card yourself in the app under Cards, and a new one is on its way.",
            "A replacement card will be at your branch tomorrow for you to collect with ID."],
         ["Cards do go missing sometimes.",
          "Keep an eye on your statement for anything odd.",
          "The card team will be in touch at some point."],
         "your new card is posted", "within three working days"),
        ("I've been charged interest I shouldn't have been.", [
            "That interest charge has been reversed and shows as a credit on today's balance.",
            "The refund of the interest will be on your account by tomorrow morning.",
            "Send us the statement page in a secure message and the charge comes off the same day."],
         ["Interest is calculated automatically by the system.",
          "The rates are in your account terms.",
          "I'll raise it with my manager."],
         "the interest is refunded", "by tomorrow"),
        ("I want to set up a standing order but the app won't let me.", [
            "The standing order is set up now, first payment on the 1st.",
            "Update the app to the latest version and the payments tab will show the standing order option.",
            "You can set it up on online banking instead, under Payments and then Regular payments."],
         ["The app team is aware of some issues.",
          "It might be a phone problem.",
          "Try again another time."],
         "the standing order is in place", "from the 1st"),
        ("My salary hasn't shown up in my account.", [
            "The payment is in our incoming queue and will be credited by 3 pm today.",
            "Your salary landed a few minutes ago, it's there now.",
            "Ask your employer for the payment reference and we'll trace it today."],
         ["Payments come in at different times.",
          "We don't control when employers pay.",
          "It'll probably turn up soon."],
         "the salary is credited", "by 3 pm"),
    ],
    "skyway": [
        ("My flight was cancelled and I need to get home.", [
            "There's a seat on tomorrow's 9:15, and it's confirmed in your name now.",
            "You can choose any flight this week on Manage Booking without paying a fee.",
            "Your new boarding pass for the 18:40 is in your email.",
            "We'll refund the ticket in full if you'd rather not fly, the request is in."],
         ["Cancellations happen for operational reasons.",
          "We're doing what we can for everyone affected.",
          "Please keep checking the website for updates."],
         "you're on the new flight", "tomorrow morning"),
        ("My bag came back damaged.", [
            "Fill in the damage form at skyway.com/bags with a photo and we'll pay the repair.",
            "A repair voucher for the bag is in your inbox, valid at any partner shop.",
            "We'll reimburse a new suitcase up to 150 euros, just send the receipt."],
         ["Bags get handled by the airport, not by us.",
          "Some wear and tear is normal.",
          "I'll forward this to the baggage team."],
         "the repair is covered", "within fourteen days"),
        ("I need to add my baby to the booking.", [
            "Your baby is added to the booking, and the infant ticket is emailed.",
            "You can add an infant on Manage Booking in a couple of minutes.",
            "Bring the birth certificate to the desk and they'll add the infant at check-in."],
         ["Infant rules depend on the route.",
          "Have a look at our family travel page.",
          "That's something the airport team deals with."],
         "the infant is on the booking", "now"),
        ("The app won't let me check in.", [
            "You're checked in now, and the boarding pass is in the app.",
            "Use the website's check-in page instead, it's working fine.",
            "Check-in desks open three hours before departure and can do it for free."],
         ["The app has had a few problems lately.",
          "Our IT team are aware.",
          "Try closing and opening the app."],
         "you're checked in", "for tomorrow"),
    ],
    "connectwave": [
        ("My internet has been down since this morning.", [
            "There's an outage in your area, and it will be fixed by 6 pm today.",
            "An engineer is booked for tomorrow between 8 and 12.",
            "Restart the router by holding the back button for ten seconds and the line will sync.",
            "Your connection is back up, the fault cleared a minute ago."],
         ["Outages do happen from time to time.",
          "We're aware of some issues in some areas.",
          "I'll log it for the network team."],
         "the line is back up", "by 6 pm"),
        ("I was charged for roaming I didn't use.", [
            "The roaming charge is removed and comes off your next bill.",
            "A credit of 22 dollars is already on your account.",
            "Turn off data roaming under Settings and I've refunded what was charged."],
         ["Roaming charges are set by partner networks.",
          "It's in the terms of your plan.",
          "I can't see anything wrong on our side."],
         "the charge is credited", "on your next bill"),
        ("I want to cancel my contract.", [
            "The cancellation is done, and your final bill comes on the 28th.",
            "Text CANCEL to 6060 and your contract ends at the end of the month.",
            "Your contract ends on the 30th, and the returns bag for the router is in the post."],
         ["Contracts have a minimum term.",
          "Another team handles cancellations.",
          "You'd need to check your contract."],
         "the contract is cancelled", "on the 30th"),
        ("My phone says SIM not provisioned.", [
            "Your SIM is provisioned now, so turn the phone off and on again.",
            "Pop into any ConnectWave shop and they'll swap the SIM for free today.",
            "A new SIM is in tomorrow's post, and your number moves onto it automatically."],
         ["That message can mean a few different things.",
          "SIM issues are usually the phone.",
          "Give it a bit longer."],
         "the SIM works", "within the hour"),
    ],
}
