"""Builds datasets/pii/heldout.jsonl from the hand-written turns below (offsets found by string search): python datasets/pii/build_heldout.py datasets/pii/heldout.jsonl"""
import json, sys
T = [
("call", "hi yes my name is priya raman and i'm calling about order 55123 it never came", [("PERSON","priya raman"),("ORDER_NUMBER","55123")]),
("call", "the address on file should be 42 Wallaby Way, Sydney, and my date of birth is 14/07/1986", [("LOCATION","42 Wallaby Way"),("DATE_OF_BIRTH","14/07/1986")]),
("chat", "You can reach me on +44 7700 900123 any time after 6pm.", [("PHONE_NUMBER","+44 7700 900123")]),
("chat", "My customer id is CUST-771-204 if that helps.", [("CUSTOMER_ID","CUST-771-204")]),
("call", "passport number is 533 380 006, it's a UK passport", [("PASSPORT","533 380 006")]),
("chat", "Driving licence: MORGA753116SM9IJ", [("DRIVER_LICENSE","MORGA753116SM9IJ")]),
("call", "um the policy number is POL-2291-77812 for the car insurance", [("POLICY_NUMBER","POL-2291-77812")]),
("call", "it's four one one one, one one one one, one one one one, one one one one on the card", [("CREDIT_CARD","four one one one, one one one one, one one one one, one one one one")]),
("chat", "email is tom.h.baker@gmail.com and my mobile is 07911 123456", [("EMAIL_ADDRESS","tom.h.baker@gmail.com"),("PHONE_NUMBER","07911 123456")]),
("call", "yeah this is marcus o'neill, account number 3 1 9 2 6 6 0 4", [("PERSON","marcus o'neill"),("ACCOUNT_NUMBER","3 1 9 2 6 6 0 4")]),
("chat", "I live at 17 Rue des Lilas, 75011 Paris. Parcel never showed up.", [("LOCATION","17 Rue des Lilas"),("LOCATION","75011 Paris")]),
("call", "my national insurance number is QQ 12 34 56 C", [("NATIONAL_ID","QQ 12 34 56 C")]),
("chat", "SSN 287-65-4321, DOB 03-22-1979", [("US_SSN","287-65-4321"),("DATE_OF_BIRTH","03-22-1979")]),
("call", "ticket number was T K T dash four four nine one", [("TICKET_NUMBER","T K T dash four four nine one")]),
("chat", "Hi, Aisha Bello here. Ticket #SR-448812 is still open after two weeks.", [("PERSON","Aisha Bello"),("TICKET_NUMBER","SR-448812")]),
("call", "born on the third of march nineteen ninety one", [("DATE_OF_BIRTH","third of march nineteen ninety one")]),
("chat", "Please ship the replacement to 1600 Amphitheatre Pkwy, Apt 4B, Mountain View CA 94043", [("LOCATION","1600 Amphitheatre Pkwy, Apt 4B"),("LOCATION","Mountain View CA 94043")]),
("chat", "call me on +1 (646) 555-0187 or +49 30 901820", [("PHONE_NUMBER","+1 (646) 555-0187"),("PHONE_NUMBER","+49 30 901820")]),
("call", "sort code 20-45-67 account 83920155 at barclays", [("ACCOUNT_NUMBER","20-45-67"),("ACCOUNT_NUMBER","83920155")]),
("chat", "The IBAN is DE89 3704 0044 0532 0130 00, name Jürgen Weiß.", [("IBAN_CODE","DE89 3704 0044 0532 0130 00"),("PERSON","Jürgen Weiß")]),
("call", "my login came from 203.0.113.77 I think, not me", [("IP_ADDRESS","203.0.113.77")]),
("chat", "Order ref: SR-ORD-00981-B, customer no. C-4471902", [("ORDER_NUMBER","SR-ORD-00981-B"),("CUSTOMER_ID","C-4471902")]),
("call", "so it's chen wei, c h e n, and the postcode is SW1A 2AA", [("PERSON","chen wei"),("LOCATION","SW1A 2AA")]),
("chat", "dob 1986.07.14, member number 55-210-993", [("DATE_OF_BIRTH","1986.07.14"),("CUSTOMER_ID","55-210-993")]),
("call", "the card ending nine nine eight one, expiry oh four twenty seven", [("CREDIT_CARD","nine nine eight one")]),
("chat", "My full card number is 5425 2334 3010 9903 exp 04/27", [("CREDIT_CARD","5425 2334 3010 9903")]),
("call", "yes sofia garcia lopez, that's g a r c i a, date of birth twelfth of may 1990", [("PERSON","sofia garcia lopez"),("DATE_OF_BIRTH","twelfth of may 1990")]),
("chat", "Insurance policy HX-88123-09 covers the phone; claim under my name Daniel Okafor", [("POLICY_NUMBER","HX-88123-09"),("PERSON","Daniel Okafor")]),
("call", "phone number is oh seven seven double oh nine double one two three four", [("PHONE_NUMBER","oh seven seven double oh nine double one two three four")]),
("chat", "New address: Flat 3, 27 Marlborough Road, Leeds LS6 1QT", [("LOCATION","Flat 3, 27 Marlborough Road"),("LOCATION","Leeds LS6 1QT")]),
("chat", "passport no. X4829931L (Spain), born 1975-11-02", [("PASSPORT","X4829931L"),("DATE_OF_BIRTH","1975-11-02")]),
("call", "uh my drivers license is D 1 2 3 - 4 5 6 7 - 8 9 0 1 California", [("DRIVER_LICENSE","D 1 2 3 - 4 5 6 7 - 8 9 0 1")]),
("chat", "Hey it's kenji from yesterday, kenji.tanaka@outlook.jp, case 77120", [("PERSON","kenji"),("EMAIL_ADDRESS","kenji.tanaka@outlook.jp"),("TICKET_NUMBER","77120")]),
("call", "the account holder is my mum, margaret ellis, account ending 4471", [("PERSON","margaret ellis"),("ACCOUNT_NUMBER","4471")]),
("chat", "Reach me at +33 6 12 34 56 78 (whatsapp)", [("PHONE_NUMBER","+33 6 12 34 56 78")]),
("chat", "I'm at 8 Chome-2-1 Ginza, Chuo City, Tokyo, order 1029384756", [("LOCATION","8 Chome-2-1 Ginza"),("ORDER_NUMBER","1029384756")]),
("call", "my social is five two three, four five, six seven eight nine", [("US_SSN","five two three, four five, six seven eight nine")]),
("chat", "Customer ID: ACC/2023/009871. Born 7 Aug 1969.", [("CUSTOMER_ID","ACC/2023/009871"),("DATE_OF_BIRTH","7 Aug 1969")]),
("call", "this is doctor amara nwosu calling for my patient, nhs number 943 476 5919", [("PERSON","amara nwosu"),("UK_NHS","943 476 5919")]),
("chat", "Please refund to card 3782 822463 10005, name on card L. Moreau", [("CREDIT_CARD","3782 822463 10005"),("PERSON","L. Moreau")]),
("call", "the order was placed under ryan fitzgerald, order number A B seven seven two one nine", [("PERSON","ryan fitzgerald"),("ORDER_NUMBER","A B seven seven two one nine")]),
("chat", "Phone: 0412 345 678, email lucy_w@bigpond.com.au", [("PHONE_NUMBER","0412 345 678"),("EMAIL_ADDRESS","lucy_w@bigpond.com.au")]),
("chat", "my bday is 11/30/92 and my account is 000123456789", [("DATE_OF_BIRTH","11/30/92"),("ACCOUNT_NUMBER","000123456789")]),
("call", "you can send the engineer to 9 elm close, bristol, b s eight one t h", [("LOCATION","9 elm close"),("LOCATION","b s eight one t h")]),
("chat", "policy: 7781-2290-11, policyholder Hannah Schmidt, DOB 02.09.1988", [("POLICY_NUMBER","7781-2290-11"),("PERSON","Hannah Schmidt"),("DATE_OF_BIRTH","02.09.1988")]),
("call", "reference for the return is R M A nine zero zero one two", [("ORDER_NUMBER","R M A nine zero zero one two")]),
("chat", "NI number AB123456D, employer asked me to update it", [("NATIONAL_ID","AB123456D")]),
("chat", "IP on my router shows 192.168.14.201 and public 81.2.69.142", [("IP_ADDRESS","192.168.14.201"),("IP_ADDRESS","81.2.69.142")]),
("call", "hello it's olumide adeyemi again, you called me on 0 8 0 3 1 2 3 4 5 6 7", [("PERSON","olumide adeyemi"),("PHONE_NUMBER","0 8 0 3 1 2 3 4 5 6 7")]),
("chat", "Order #88-441-2 and order #88-441-3 both arrived damaged.", [("ORDER_NUMBER","88-441-2"),("ORDER_NUMBER","88-441-3")]),
("call", "my wife isabel santos is on the account too, her birthday is june 5th 1984", [("PERSON","isabel santos"),("DATE_OF_BIRTH","june 5th 1984")]),
("chat", "Billing address 350 Fifth Avenue, Suite 3300, New York, NY 10118", [("LOCATION","350 Fifth Avenue, Suite 3300"),("LOCATION","New York, NY 10118")]),
("chat", "membership #GYM-00442-X, card on file 4000 0566 5566 5556", [("CUSTOMER_ID","GYM-00442-X"),("CREDIT_CARD","4000 0566 5566 5556")]),
("call", "yes the name is b-r-o-w-n, elliot brown, b r o w n", [("PERSON","elliot brown")]),
("chat", "Contact: +61 2 9374 4000, Mei Ling Chua", [("PHONE_NUMBER","+61 2 9374 4000"),("PERSON","Mei Ling Chua")]),
("call", "account is eight three nine two oh one five five and the pin, no wait I won't say the pin", [("ACCOUNT_NUMBER","eight three nine two oh one five five")]),
("chat", "US passport 910239248, expires 2031", [("PASSPORT","910239248")]),
("chat", "Date of birth: 1st January 2001. Customer ref CR-2093-KL.", [("DATE_OF_BIRTH","1st January 2001"),("CUSTOMER_ID","CR-2093-KL")]),
("call", "so i'm at forty two wallaby way in sydney, p sherman", [("LOCATION","forty two wallaby way"),("PERSON","p sherman")]),
("chat", "pls call 555-867-5309 and ask for jenny", [("PHONE_NUMBER","555-867-5309"),("PERSON","jenny")]),
("chat", "Bank: NatWest, acct no 12-34-56 / 98765432, name Callum Reid", [("ACCOUNT_NUMBER","12-34-56"),("ACCOUNT_NUMBER","98765432"),("PERSON","Callum Reid")]),
("call", "the claim number is C L M two zero two four dash eight eight one", [("POLICY_NUMBER","C L M two zero two four dash eight eight one")]),
("chat", "Licence no. 4B7-229-118 (Ontario), DOB 1990/04/18", [("DRIVER_LICENSE","4B7-229-118"),("DATE_OF_BIRTH","1990/04/18")]),
("chat", "Ticket INC0012345 - my email changed to r.patel+shop@proton.me", [("TICKET_NUMBER","INC0012345"),("EMAIL_ADDRESS","r.patel+shop@proton.me")]),
("call", "hi i'm fatima al zahra, my number is plus nine seven one five zero one two three four five six seven", [("PERSON","fatima al zahra"),("PHONE_NUMBER","plus nine seven one five zero one two three four five six seven")]),
("chat", "Deliver to Calle Mayor 12, 3º B, 28013 Madrid please", [("LOCATION","Calle Mayor 12, 3º B"),("LOCATION","28013 Madrid")]),
("chat", "My customer number is 40021877 and invoice INV-2024-0091", [("CUSTOMER_ID","40021877"),("ORDER_NUMBER","INV-2024-0091")]),
("call", "yeah it's nguyen van an, n g u y e n, born ninth of october eighty seven", [("PERSON","nguyen van an"),("DATE_OF_BIRTH","ninth of october eighty seven")]),
("chat", "Hi, Grace Mwangi, order 7730012, phone 0722 555 019", [("PERSON","Grace Mwangi"),("ORDER_NUMBER","7730012"),("PHONE_NUMBER","0722 555 019")]),
("call", "my passport is g b five five one two three four nine and my ni is j g one two three four five six a", [("PASSPORT","g b five five one two three four nine"),("NATIONAL_ID","j g one two three four five six a")]),
("chat", "Policy no. AUTO/55/918273, vehicle reg irrelevant; my email anne.dupont@laposte.net", [("POLICY_NUMBER","AUTO/55/918273"),("EMAIL_ADDRESS","anne.dupont@laposte.net")]),
("call", "it's the account for 12 Oak Street, I'm peter novak, customer id P N seven seven one", [("LOCATION","12 Oak Street"),("PERSON","peter novak"),("CUSTOMER_ID","P N seven seven one")]),
]
out = []
for i, (channel, text, secrets) in enumerate(T):
    spans, cursor = [], {}
    for etype, value in secrets:
        start = text.find(value, cursor.get(value, 0))
        if start < 0:
            sys.exit(f"{i}: {value!r} not in {text!r}")
        cursor[value] = start + len(value)
        spans.append({"entity_type": etype, "start": start, "end": start + len(value), "value": value})
    out.append({"id": f"cc-{i+1:03d}", "channel": channel, "text": text, "spans": spans})
with open(sys.argv[1], "w") as f:
    for r in out:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(len(out), "turns", sum(len(r["spans"]) for r in out), "secrets")
